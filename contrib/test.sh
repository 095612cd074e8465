#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine, in one command:
#
#   bash contrib/test.sh
#
# Installs missing dependencies, builds in build/ (warnings are errors), and
# runs `make check`: the unit tests (Criterion), the mapping golden tests, and
# the integration tests, which start a real Apache Kafka broker and Schema
# Registry on loopback and stop them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(bash contrib/build.sh)
cd "$build"
status=0
make -j2 check || status=$?
bash ../contrib/test-summary.sh .
exit $status
