#!/usr/bin/env bash
# hl7bridge against its peers, side by side on one machine and one Kafka:
#
#   tests/bench/peers/run.sh [BUILDDIR]
#
# Peers (each ACKs a message only after the broker acknowledged its record,
# with an idempotent producer and acks=all):
#   node    node:net MLLP server + KafkaJS 2.2 (records within 5 ms in one send)
#   camel   Apache Camel 4.17: camel-mllp + camel-hl7 (HAPI) + camel-kafka
#   python  asyncio MLLP server + python-hl7 + confluent-kafka (linger.ms=5)
# and hl7bridge itself (a Kafka transaction with a ledger record per batch).
#
# For each load shape and RUNS rounds (default 3), the systems run in turn
# (interleaved, so drift in the machine's load hits all of them), each on
# fresh distinct ADT^A01 messages driven by `hl7bridge send`. Every run then
# counts the events a read_committed consumer sees for that run against the
# AA the sender got. Prints one line per run and the medians; writes them to
# $OUT (default BUILDDIR/bench-peers.txt).
#
# Knobs: SHAPES (default "1 8 64 256 256x4"), SYSTEMS (default
# "hl7bridge node camel python"), RUNS, SCALE (multiplies message counts),
# WARMUP (default 1: one unreported run of each system first),
# PARTITIONS (default 12, the quick start's): every system's topic is made
# with that many partitions before its run (hl7bridge's by its [topics]
# partitions, the peers' with confluent-kafka's admin client), since the
# cost of a record batch and of a transaction grows with the partitions it
# writes. Use a broker of its own (unset HB_KAFKA_BOOTSTRAP): an event
# topic that already exists keeps its partitions.
# Starts Kafka with tests/services/kafka.sh unless HB_KAFKA_BOOTSTRAP is set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
build=${1:-$src/build}
build=$(cd "$build" && pwd)
out=${OUT:-$build/bench-peers.txt}
shapes=${SHAPES:-"1 8 64 256 256x4"}
systems=${SYSTEMS:-"hl7bridge node camel python"}
runs=${RUNS:-3}
partitions=${PARTITIONS:-12}
scale=${SCALE:-1}
bin=$build/hl7bridge
[ -x "$bin" ] || { echo "no $bin: build first (bash contrib/build.sh)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/hl7bridge-peers.XXXXXX")
ppid_=
started_kafka=
cleanup() {
	[ -n "$ppid_" ] && kill -TERM "$ppid_" 2>/dev/null && wait "$ppid_" 2>/dev/null
	rm -rf "$work"
	[ -n "$started_kafka" ] && "$src/tests/services/kafka.sh" stop >/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -z "${HB_KAFKA_BOOTSTRAP:-}" ]; then
	started_kafka=1
	HB_KAFKA_BOOTSTRAP=$("$src/tests/services/kafka.sh" start)
fi

# One-time setup of each peer (cached in the source tree, ignored by git);
# the Python one always: its confluent-kafka makes the peers' topics.
for s in python $systems; do
	case $s in
	node) [ -d "$here/node/node_modules/kafkajs" ] ||
		(cd "$here/node" && npm install --no-audit --no-fund --silent) >&2 ;;
	python) [ -x "$here/python/.venv/bin/python" ] || {
		python3 -m venv "$here/python/.venv" &&
			"$here/python/.venv/bin/pip" install -q -r "$here/python/requirements.txt"; } >&2 ;;
	camel) [ -f "$here/camel/target/peer.jar" ] ||
		(cd "$here/camel" && mvn -q -B package -DskipTests) >&2 ;;
	esac
done

run_id=$(date +%s)-$$
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

gen() { # gen N TAG: N distinct ADT^A01
	awk -v n="$1" -v tag="$2" '
	BEGIN { ORS = "\r" }
	{
		for (i = 1; i <= n; i++) {
			id = tag "-" i
			print "MSH|^~\\&|BENCH|BENCHHOSP|HL7BRIDGE|CMM|20261127070000||ADT^A01^ADT_A01|" id "|P|2.5.1"
			print "EVN|A01|20261127070000"
			print "PID|1||" id "^^^BENCHHOSP^MR||Example^Sam^J||19800101|F|||1 Test Road^^Testville^MI^49116^USA^H||^PRN^PH^^1^269^5550111"
			print "PV1|1|I|WARD1^101^A"
		}
	}' <<<"x"
}

make_topic() { # make_topic TOPIC: with $partitions partitions
	"$here/python/.venv/bin/python" - "$HB_KAFKA_BOOTSTRAP" "$1" "$partitions" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
for f in a.create_topics([NewTopic(sys.argv[2], int(sys.argv[3]), 1)]).values():
    f.result()
PY
}

# start SYSTEM NAME: starts it in the background, sets ppid_ and port, and
# the topic its events go to
start() {
	local sys=$1 name=$2
	rm -f "$work/ready"
	mkfifo "$work/ready"
	case $sys in
	hl7bridge)
		topic=healthcare.patient.created
		cat >"$work/$name.conf" <<CONF
[bridge]
instance = peers-$name
mappings = $src/mappings
schemas = $src/conf/schemas
[kafka]
bootstrap.servers = $HB_KAFKA_BOOTSTRAP
[topics]
state = peers.state-$name
partitions = $partitions
[listener bench]
bind = 127.0.0.1:0
max.connections = 1024
max.connections.per.peer = 0
CONF
		"$bin" run -c "$work/$name.conf" --ready-fd 3 3>"$work/ready" 2>"$work/$name.log" & ;;
	node)
		topic=peers.$name
		make_topic "$topic"
		node "$here/node/peer.js" 0 "$topic" "$HB_KAFKA_BOOTSTRAP" >"$work/ready" 2>"$work/$name.log" & ;;
	python)
		topic=peers.$name
		make_topic "$topic"
		"$here/python/.venv/bin/python" "$here/python/peer.py" 0 "$topic" "$HB_KAFKA_BOOTSTRAP" \
			>"$work/ready" 2>"$work/$name.log" & ;;
	camel)
		topic=peers.$name
		make_topic "$topic"
		java -Xmx1g -cp "$here/camel/target/peer.jar:$here/camel/target/lib/*" peer.Peer \
			"$(free_port)" "$topic" "$HB_KAFKA_BOOTSTRAP" >"$work/ready" 2>"$work/$name.log" & ;;
	esac
	ppid_=$!
	local word
	port=
	read -r word port _ <"$work/ready" || true
	[ -n "$port" ] || { echo "$sys did not start: $(tail -5 "$work/$name.log")" >&2; exit 1; }
	[ "$sys" = camel ] && sleep 2 # the route starts after "ready"
	return 0
}

cpu_of() { # CPU seconds of a process and its children so far
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat"
}

# one SYSTEM SHAPE CONNS PIPE N ROUND
one() {
	local sys=$1 shape=$2 conns=$3 pipe=$4 n=$5 round=$6
	local name="$sys-$shape-$round-$run_id" tag
	tag="P${run_id//-/}${sys:0:2}${shape//x/p}r$round"
	gen "$n" "$tag" >"$work/msgs.hl7"
	start "$sys" "$name"
	local rc=0
	"$bin" send --quiet --connections "$conns" --pipeline "$pipe" --timeout 60 \
		"127.0.0.1:$port" "$work/msgs.hl7" 2>"$work/send" || rc=$?
	local cpu
	cpu=$(cpu_of "$ppid_")
	kill -TERM "$ppid_" 2>/dev/null
	wait "$ppid_" 2>/dev/null || true
	ppid_=
	local tput p50 p99 ok events
	ok=$(sed -n 's/.*AA\/CA \([0-9]*\),.*/\1/p' "$work/send")
	tput=$(sed -n 's/.* \([0-9.]*\) msgs\/s.*/\1/p' "$work/send")
	read -r p50 p99 < <(sed -n 's/.*p50 \([0-9.]*\) p99 \([0-9.]*\).*/\1 \2/p' "$work/send") || true
	events=$("$bin" consume -b "$HB_KAFKA_BOOTSTRAP" --from-beginning --timeout 4 "$topic" 2>/dev/null |
		grep -c "\"$tag-" || true)
	printf '%-9s %-6s %5d %4d %7d %7s %7s %10s %9s %9s %7s\n' "$sys" "$shape" "$conns" "$pipe" "$n" \
		"${ok:-0}" "$events" "${tput:-0}" "${p50:-?}" "${p99:-?}" "$cpu"
}

{
echo "# hl7bridge vs peers, $(date -u +%FT%TZ), git $(cd "$src" && git rev-parse --short HEAD), $($bin --version | sed -n 's/.*\(librdkafka [^,]*\).*/\1/p')"
echo "# machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# every system's topic: $partitions partitions (PARTITIONS)"
printf '%-9s %-6s %5s %4s %7s %7s %7s %10s %9s %9s %7s\n' system shape conns pipe msgs AA events msgs/s p50_ms p99_ms cpu_s
} | tee "$out"

for shape in $shapes; do
	case $shape in
	1) c=1 p=1 n=$((300 * scale)) ;;
	8) c=8 p=1 n=$((2000 * scale)) ;;
	64) c=64 p=1 n=$((10000 * scale)) ;;
	256) c=256 p=1 n=$((20000 * scale)) ;;
	256x4) c=256 p=4 n=$((40000 * scale)) ;;
	*) echo "unknown shape $shape" >&2; exit 2 ;;
	esac
	for r in $(seq 1 "$runs"); do
		for s in $systems; do
			one "$s" "$shape" "$c" "$p" "$n" "$r"
		done
	done
done | tee -a "$out"

# medians of msgs/s per system and shape
echo "# medians (msgs/s; events/AA of all runs)" | tee -a "$out"
awk '!/^#/ && $1 != "system" {
	k = $1 " " $2; v[k] = v[k] " " $8; ev[k] += $7; aa[k] += $6; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
END {
	for (i = 1; i <= n; i++) {
		k = order[i]; m = split(substr(v[k], 2), a, " ")
		for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
		printf "# %-16s %10s msgs/s   events %d / AA %d\n", k, a[int((m + 1) / 2)], ev[k], aa[k]
	}
}' "$out" | tee -a "$out"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
