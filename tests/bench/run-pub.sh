#!/usr/bin/env bash
# Publisher benchmark against the real broker of tests/services/.
#   tests/bench/run-pub.sh [BUILDDIR] [EVENTS_PER_RUN]
# Uses HB_KAFKA_BOOTSTRAP when set; otherwise starts Kafka and stops it after.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
n=${2:-40000}
make -C "$build" -s tests/bench/bench_pub
if [ -z "${HB_KAFKA_BOOTSTRAP:-}" ]; then
	trap '"$src/tests/services/kafka.sh" stop' EXIT
	HB_KAFKA_BOOTSTRAP=$("$src/tests/services/kafka.sh" start)
fi
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
"$build/tests/bench/bench_pub" "$HB_KAFKA_BOOTSTRAP" "$n"
