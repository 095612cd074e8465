#!/usr/bin/env bash
# Build hl7bridge out of tree in build/ (warnings are errors), installing
# missing Debian packages first. Used by contrib/test.sh and
# contrib/quickstart.sh; prints the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/install-deps.sh >&2
[ -x configure ] || autoreconf -fi >&2
mkdir -p build
cd build
[ -f Makefile ] || ../configure --enable-werror >&2
make -j2 >&2
pwd
