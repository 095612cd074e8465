#!/usr/bin/env bash
# Replay benchmark against the real broker of tests/services/ (started here
# unless HB_KAFKA_BOOTSTRAP is set): a batch of small ADT^A08 messages
# (tests/bench/drop-inputs.py hl7-small, SIZE MB, default 100 as in the issue)
# goes through a file drop with [topics] raw = on, so every message is a
# raw record; then `hl7bridge replay --from raw-hl7v2` re-maps them
#   1. --dry-run (read, split, map; nothing published), and
#   2. --republish (read, map, publish with the group's offsets in each
#      transaction: the real thing),
# and prints replay's own summary lines (records, seconds, records/s).
#
#   tests/bench/run-replay.sh [BUILDDIR] [SIZE_MB] [INPUTS_PER_TRANSACTION]
#
# Everything goes to topics named after this run (bench.replay.<pid>.*).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
size=${2:-100}
per_txn=${3:-500}
work=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" || true
	[ -n "${started_kafka:-}" ] && "$src/tests/services/kafka.sh" stop
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${HB_KAFKA_BOOTSTRAP:-}" ]; then
	started_kafka=1
	HB_KAFKA_BOOTSTRAP=$("$src/tests/services/kafka.sh" start)
fi
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"

python3 "$src/tests/bench/drop-inputs.py" hl7-small "$work/batch.hl7" "$size"
ls -l "$work/batch.hl7" | awk '{print $5, $NF}'
run=bench.replay.$$
cat >"$work/bench.conf" <<CONF
[bridge]
instance = $run
mappings = $src/mappings
schemas = $src/conf/schemas
[kafka]
bootstrap.servers = $HB_KAFKA_BOOTSTRAP
[topics]
prefix = $run.
events = patient.updated
partitions = 3
deadletter = $run.deadletter
raw = on
raw.hl7v2 = $run.raw.hl7v2
raw.fhir = $run.raw.fhir
state = $run.state
[http]
bind = 127.0.0.1:0
[drop bench]
path = $work/drop
max.messages.per.transaction = 2000
CONF
"$build/hl7bridge" run -c "$work/bench.conf" 2>"$work/log" &
pid=$!
until grep -q "ready in" "$work/log"; do sleep 0.2; kill -0 $pid; done
mv "$work/batch.hl7" "$work/drop/inbox/batch.hl7"
until [ -e "$work/drop/done/batch.hl7" ]; do sleep 0.2; kill -0 $pid; done
grep -E "done:" "$work/log" | sed 's/^.*drop: //'
kill -TERM $pid && wait $pid || true
pid=""

echo "== dry run (map only)"
"$build/hl7bridge" replay -c "$work/bench.conf" --from raw-hl7v2 --dry-run --republish --progress 0 2>&1 |
	grep -E "^replay (done|interrupted|FAILED)|would publish|hl7bridge replay"
echo "== replay --republish, $per_txn inputs per transaction"
"$build/hl7bridge" replay -c "$work/bench.conf" --from raw-hl7v2 --republish --batch "$per_txn" \
	--progress 0 2>&1 | grep -E "^replay (done|interrupted|FAILED)|  published|hl7bridge replay"
