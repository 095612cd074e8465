#!/usr/bin/env bash
# File-drop benchmark, end to end to committed events, against the real
# broker of tests/services/ (started here unless HB_KAFKA_BOOTSTRAP is set):
# 100 MB HL7v2 batches and 100,000-line NDJSON exports (FHIR Patient), small
# and full-size messages (tests/bench/drop-inputs.py), dropped one after the
# other into a fresh drop.
#
#   tests/bench/run-drop.sh [BUILDDIR] [MESSAGES_PER_TRANSACTION]
#
# INPUTS picks the inputs (default "hl7-small ndjson-small hl7-full
# ndjson-full"); THREADS sets the drop's mapping threads; KAFKA_EXTRA adds
# lines to [kafka] (e.g. "compression.codec = lz4") and DROP_EXTRA to the
# drop (e.g. "message.dedup = off"); HB_PRELOAD is put in the
# daemon's LD_PRELOAD (e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2).
#
# Prints the daemon's own "done" lines (messages, events, MB/s), the wall
# time from the drop to the file reaching done/, and the CPU seconds the
# daemon and the broker spent on each file (the two share the machine).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
per_txn=${2:-2000}
work=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" || true
	[ -n "${started_kafka:-}" ] && "$src/tests/services/kafka.sh" stop
	rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${HB_KAFKA_BOOTSTRAP:-}" ]; then
	started_kafka=1
	HB_KAFKA_BOOTSTRAP=$("$src/tests/services/kafka.sh" start)
fi
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"

inputs=${INPUTS:-hl7-small ndjson-small hl7-full ndjson-full}
files=""
for k in $inputs; do
	case $k in hl7-*) f=$k.hl7 ;; *) f=$k.ndjson ;; esac
	python3 "$src/tests/bench/drop-inputs.py" "$k" "$work/$f"
	files="$files $f"
done
ls -l $(for f in $files; do echo "$work/$f"; done) | awk '{print $5, $NF}'

cat >"$work/bench.conf" <<CONF
[bridge]
instance = bench-drop-$$
mappings = $src/mappings
schemas = $src/conf/schemas
[kafka]
bootstrap.servers = $HB_KAFKA_BOOTSTRAP
${KAFKA_EXTRA:-}
[topics]
state = bench.drop.state.$$
[drop bench]
path = $work/drop
max.messages.per.transaction = $per_txn
${THREADS:+threads = $THREADS}
${DROP_EXTRA:-}
CONF
${HB_PRELOAD:+env LD_PRELOAD=$HB_PRELOAD} "$build/hl7bridge" run -c "$work/bench.conf" 2>"$work/log" &
pid=$!
until grep -q "ready in" "$work/log"; do sleep 0.2; kill -0 $pid; done
kpid=$(cat "$src/tests/services/.run/kafka.pid" 2>/dev/null || true)
cpu() { # user+system seconds of pid $1 (0 when unknown)
	if [ -n "$1" ] && [ -r "/proc/$1/stat" ]; then
		awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); print ($12 + $13) / hz}' "/proc/$1/stat"
	else echo 0; fi
}
for f in $files; do
	d0=$(cpu $pid) k0=$(cpu "$kpid")
	t0=$(date +%s.%N)
	mv "$work/$f" "$work/drop/inbox/$f"
	until [ -e "$work/drop/done/$f" ]; do sleep 0.1; kill -0 $pid; done
	t1=$(date +%s.%N)
	d1=$(cpu $pid) k1=$(cpu "$kpid")
	echo "$f: $(python3 -c "print('%.1f s from drop to done/; CPU s: daemon %.1f, broker %.1f' % ($t1 - $t0, $d1 - $d0, $k1 - $k0))")"
done
grep -E "done:" "$work/log" | sed 's/^.*drop: //'
