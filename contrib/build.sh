#!/usr/bin/env bash
# Build hl7bridge out of tree in build/ (warnings are errors), installing
# missing Debian packages first. Used by contrib/test.sh and
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
# configure again when the Makefile was made for the other librdkafka
want="--with-librdkafka=$rdkafka"
[ "$rdkafka" = system ] && want=
have=$( { sed -n 's/^  \$ .*configure .*\(--with-librdkafka=[^ ]*\).*/\1/p' config.log 2>/dev/null || true; } | head -n 1)
if [ ! -f Makefile ] || [ "$have" != "$want" ]; then
	if [ "$rdkafka" = system ]; then
		../configure --enable-werror >&2
	else
		../configure --enable-werror --with-librdkafka="$rdkafka" >&2
	fi
fi
make -j2 >&2
pwd
