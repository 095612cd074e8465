#!/usr/bin/env bash
# Install what hl7bridge needs to build and test on Debian 12 (bookworm).
# Idempotent: installs only the packages that are missing; safe to run again.
#
#   sudo contrib/install-deps.sh          build + test dependencies
#
# Java (for the Kafka broker and the Schema Registry used by the tests), Maven
# and Node.js are needed by the tests too; Debian's packages are installed when
# the commands are missing.
set -euo pipefail

BUILD_PKGS="build-essential autoconf automake libtool pkg-config python3-venv
 librdkafka-dev libjansson-dev libxml2-dev libev-dev libssl-dev libavro-dev
 libcurl4-openssl-dev libmicrohttpd-dev"
# chromium: the browser test of the status page and the playground
TEST_PKGS="libcriterion-dev clang libclang-rt-14-dev llvm python3 curl procps util-linux chromium"

missing=""
for p in $BUILD_PKGS $TEST_PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
command -v java >/dev/null || missing="$missing default-jre-headless"
command -v mvn >/dev/null || missing="$missing maven"
command -v node >/dev/null || missing="$missing nodejs npm"

if [ -n "$missing" ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	echo "installing:$missing"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
else
	echo "all build and test dependencies are installed"
fi
