#!/usr/bin/env bash
# Put a current librdkafka into DIR/lib and print DIR, for
# `configure --with-librdkafka=DIR`.
#
#   bash contrib/librdkafka.sh [DIR]        # default: build/librdkafka
#
# Why: Debian 12 ships librdkafka 2.0.2, whose main thread spins while a
# transaction commits (about 2.5 ms of CPU per commit, measured with perf:
# rdk:main in clock_gettime and mutex calls). librdkafka 2.16 does not, and a
# bridge that commits one transaction per message at low load uses four to
# five times less CPU with it (docs/benchmarks.md). Debian has no newer
# package, so this takes the librdkafka that the confluent-kafka wheel on PyPI
# ships (a self-contained build: only libc, libm, libdl, libpthread, librt),
# checked against a pinned SHA-256. Headers stay Debian's (librdkafka-dev):
# librdkafka keeps its ABI backward compatible, and the bridge calls nothing
# newer than 2.0.
#
# Idempotent and offline once DIR holds the library. HB_SYSTEM_RDKAFKA=1
# makes contrib/build.sh skip this and use Debian's library.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$src/build/librdkafka}
version=2.16.1
wheel=confluent_kafka-$version-cp311-cp311-manylinux_2_28_x86_64.whl
wheel_sha256=24f613cc81a856b6fbb2d7d11044a9aa770044eecc1f83ff84618688b056be06

stamp="$dir/lib/.version"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version $wheel_sha256" ]; then
	echo "$dir"
	exit 0
fi
[ "$(uname -m)" = x86_64 ] || {
	echo "librdkafka.sh: only x86_64 is pinned; use HB_SYSTEM_RDKAFKA=1" >&2
	exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hl7bridge-rdkafka.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "librdkafka.sh: fetching librdkafka $version (confluent-kafka wheel) into $dir" >&2
python3 -m venv "$tmp/venv" >&2
"$tmp/venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
	--only-binary :all: --platform manylinux_2_28_x86_64 --python-version 3.11 \
	--implementation cp --abi cp311 -d "$tmp" "confluent-kafka==$version" >&2
echo "$wheel_sha256  $tmp/$wheel" | sha256sum -c --quiet - >&2 || {
	echo "librdkafka.sh: $wheel does not match its pinned SHA-256" >&2
	exit 1
}
"$tmp/venv/bin/python" -m zipfile -e "$tmp/$wheel" "$tmp/whl" >&2
lib=$(find "$tmp/whl/confluent_kafka.libs" -name 'librdkafka-*.so.1' | head -n 1)
[ -n "$lib" ] || { echo "librdkafka.sh: no librdkafka in $wheel" >&2; exit 1; }
mkdir -p "$dir/lib"
rm -f "$dir"/lib/librdkafka*
# The binary records the library's SONAME (librdkafka-<hash>.so.1); the
# linker finds it as librdkafka.so.
cp "$lib" "$dir/lib/"
ln -sf "$(basename "$lib")" "$dir/lib/librdkafka.so"
echo "$version $wheel_sha256" >"$stamp"
echo "$dir"
