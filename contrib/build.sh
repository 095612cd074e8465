#!/usr/bin/env bash
# Build hl7bridge out of tree in build/ (warnings are errors), installing
# missing Debian packages first. Assertions are on (--enable-debug): this
# is the build the tests run against. Used by contrib/test.sh and
# contrib/quickstart.sh; prints the build directory.
#
# The build links librdkafka 2.16 from contrib/librdkafka.sh (Debian 12's
# 2.0.2 burns CPU in every transaction commit); HB_SYSTEM_RDKAFKA=1 links
# Debian's library instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/install-deps.sh >&2
[ -x configure ] || autoreconf -fi >&2
rdkafka=system
[ "${HB_SYSTEM_RDKAFKA:-0}" = 1 ] || rdkafka=$(bash contrib/librdkafka.sh "$PWD/build/librdkafka")
mkdir -p build
cd build
flags=(--enable-werror --enable-debug)
[ "$rdkafka" = system ] || flags+=("--with-librdkafka=$rdkafka")
# configure again when the Makefile was made with other options (the other
# librdkafka, or before --enable-debug); a recheck (config.status) adds
# --no-create --no-recursion
have=$( { sed -n 's/^  \$ [^ ]*configure //p' config.log 2>/dev/null || true; } | head -n 1)
have=${have% --no-create --no-recursion}
if [ ! -f Makefile ] || [ "$have" != "${flags[*]}" ]; then
	../configure "${flags[@]}" >&2
fi
make -j2 >&2
pwd
