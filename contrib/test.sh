#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine, in one command:
#
#   bash contrib/test.sh
#
# Installs missing dependencies, configures in build/ (warnings are errors),
# builds, and runs `make check`: the unit tests (Criterion), the mapping golden tests, and
# the integration tests, which start a real Apache Kafka broker and Schema
# Registry on loopback and stop them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/install-deps.sh
[ -x configure ] || autoreconf -fi
# Out-of-tree build in build/, so other flavours (build-asan, build-clang,
# build-fuzz) can be configured beside it.
mkdir -p build
cd build
[ -f Makefile ] || ../configure --enable-werror
make -j2
status=0
make -j2 check || status=$?
bash ../contrib/test-summary.sh .
exit $status
