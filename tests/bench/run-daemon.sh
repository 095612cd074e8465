#!/usr/bin/env bash
# The daemon end to end: MLLP → parse → map → committed Kafka transaction → ACK.
#
#   tests/bench/run-daemon.sh [BUILDDIR]
#
# Builds hl7bridge (BUILDDIR, default build/, configured if needed), starts
# Kafka with tests/services/kafka.sh unless HB_KAFKA_BOOTSTRAP is set, and for
# each load shape starts a fresh daemon, drives it with `hl7bridge send`, and
# reads the daemon's peak RSS (VmHWM) and CPU time before stopping it (and
# the broker's CPU during the send, when the broker is the harness's), and
# the median transaction time from the line the daemon logs at exit. Every message is
# unique (its own MSH-10 and patient id), so each one is a real commit, never
# a ledger duplicate. Prints one table line per run and writes them to
# $OUT (default BUILDDIR/bench-daemon.txt).
#
# Shapes: 1, 8, 64 and 256 connections with one message in flight each; 256
# connections with 4 in flight; and the 256×1 shape again at half the rate it
# reached (--rate), for the latency target. Knobs (environment): SCALE
# (multiplies message counts, default 1), LANES, LINGER, BATCH (the
# [publisher] keys; unset = the daemon's defaults), SHAPES (a subset, e.g.
# "1 8"), PARTITIONS ([topics] partitions: the event topics' partitions
# when the daemon creates them, i.e. on a fresh broker; default 12, the
# quick start's), SHARED ([ledger] shared: off measures the barrier's
# cost), KAFKA_LINGER (the producers' linger.ms). A transaction's cost
# grows with the partitions it writes, so the table is comparable only
# between brokers with the same topics.
#
# Targets (the daemon issue): throughput >= 80% of connections / (one
# commit's latency) for the one-in-flight shapes, where one commit's latency
# is the p50 ACK latency at 1 connection; >= 20000 msgs/s at 256 connections
# or pipelined; p99 ACK latency <= 50 ms at half that load; peak RSS <= 100 MB.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
scale=${SCALE:-1}
out=${OUT:-$build/bench-daemon.txt}
shapes=${SHAPES:-"1 8 64 256 256x4 half"}

if [ ! -f "$build/Makefile" ]; then
	(cd "$src" && [ -x configure ] || autoreconf -fi)
	mkdir -p "$build"
	(cd "$build" && "$src/configure" >/dev/null)
fi
make -C "$build" -s -j2 hl7bridge

work=$(mktemp -d "${TMPDIR:-/tmp}/hl7bridge-bench.XXXXXX")
dpid=
started_kafka=
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
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

run_id=$(date +%s)-$$


# The broker's CPU per run, when it is the harness's (kafka.sh's pid file).
kpid=$(cat "${HB_SERVICES_DIR:-$src/tests/services/.run}/kafka.pid" 2>/dev/null || true)
[ -n "$kpid" ] && [ -r "/proc/$kpid/stat" ] || kpid=
ticks() { # utime + stime of PID and its waited-for children, in seconds
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat"
}

# gen N TAG > file: N distinct ADT^A01 messages (→ healthcare.patient.created)
gen() {
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

conf() { # conf NAME
	cat <<EOF
[bridge]
instance = bench-$run_id-$1
mappings = $src/mappings
schemas = $src/conf/schemas
log.level = info
[kafka]
bootstrap.servers = $HB_KAFKA_BOOTSTRAP
${KAFKA_LINGER:+linger.ms = $KAFKA_LINGER}
[topics]
state = bench.state-$run_id-$1
${PARTITIONS:+partitions = $PARTITIONS}
[publisher]
${LANES:+lanes = $LANES}
${LINGER:+linger = $LINGER}
${BATCH:+batch.max.messages = $BATCH}
[ledger]
${SHARED:+shared = $SHARED}
[listener bench]
bind = 127.0.0.1:0
max.connections = 1024
max.connections.per.peer = 0
EOF
}

# run NAME CONNECTIONS PIPELINE MESSAGES [RATE]: prints the result line
run() {
	local name=$1 conns=$2 pipe=$3 n=$4 rate=${5:-0}
	conf "$name" >"$work/$name.conf"
	gen "$n" "B$run_id-$name" >"$work/$name.hl7"
	rm -f "$work/ready"
	mkfifo "$work/ready"
	"$build/hl7bridge" run -c "$work/$name.conf" --ready-fd 3 3>"$work/ready" 2>"$work/$name.log" &
	dpid=$!
	local word port= # read, not awk: mawk waits for a full buffer on a FIFO
	read -r word port _ <"$work/ready" || true
	[ -n "$port" ] || { echo "daemon did not start: see $work/$name.log" >&2; cat "$work/$name.log" >&2; exit 1; }
	local rc=0 kcpu0=
	[ -n "$kpid" ] && kcpu0=$(ticks "$kpid")
	"$build/hl7bridge" send --quiet --connections "$conns" --pipeline "$pipe" --rate "$rate" \
		--timeout 60 "127.0.0.1:$port" "$work/$name.hl7" 2>"$work/$name.send" || rc=$?
	local hwm cpu
	hwm=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$dpid/status")
	# utime + stime of the daemon (clock ticks), over the whole run
	cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$dpid/stat")
	local kcpu=-
	[ -n "$kcpu0" ] && kcpu=$(awk -v a="$kcpu0" -v b="$(ticks "$kpid")" 'BEGIN { printf "%.1f", b - a }')
	kill -TERM "$dpid"
	wait "$dpid" || true
	dpid=
	rm -f "$work/$name.hl7"
	# hl7bridge send: sent N, AA/CA N, ... elapsed S s, R msgs/s
	# hl7bridge send: ACK latency ms: p50 A p99 B p99.9 C max D (...)
	local tput p50 p99 p999 ok
	ok=$(sed -n 's/.*AA\/CA \([0-9]*\),.*/\1/p' "$work/$name.send")
	tput=$(sed -n 's/.* \([0-9.]*\) msgs\/s.*/\1/p' "$work/$name.send")
	read -r p50 p99 p999 < <(sed -n 's/.*p50 \([0-9.]*\) p99 \([0-9.]*\) p99.9 \([0-9.]*\).*/\1 \2 \3/p' "$work/$name.send") || true # no line: the send failed, said below
	[ "$rc" -eq 0 ] && [ "$ok" = "$n" ] || { echo "send failed ($rc): $(cat "$work/$name.send")" >&2; tail -5 "$work/$name.log" >&2; }
	# the daemon's own line at exit: "commit p50 X ms p99 Y ms; ..."
	local commit
	commit=$(sed -n 's/.*commit p50 \([0-9.]*\) ms.*/\1/p' "$work/$name.log" | tail -1)
	# the daemon warns when a topic differs from [topics] partitions
	local parts
	parts=$(sed -n 's/.*healthcare.patient.created: has \([0-9]*\) partitions.*/\1/p' "$work/$name.log" | head -1)
	parts=${parts:-${PARTITIONS:-12}}
	echo "$parts" >"$work/partitions" # run() is in a pipeline: a subshell
	printf '%-6s %5d %4d %7d %7s %10s %9s %9s %9s %8s %6s %9s %8s\n' "$name" "$conns" "$pipe" "$n" "$ok" "$tput" \
		"$p50" "$p99" "$p999" "$hwm" "$cpu" "${commit:-?}" "$kcpu"
	last_tput=$tput
	last_p50=$p50
}

{
echo "# hl7bridge daemon benchmark, $(date -u +%FT%TZ), git $(cd "$src" && git rev-parse --short HEAD)"
echo "# machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# Kafka: $HB_KAFKA_BOOTSTRAP; publisher: lanes=${LANES:-default} linger=${LINGER:-default} batch.max.messages=${BATCH:-default}"
printf '%-6s %5s %4s %7s %7s %10s %9s %9s %9s %8s %6s %9s %8s\n' shape conns pipe msgs AA msgs/s p50_ms p99_ms p99.9_ms HWM_MB cpu_s commit_ms broker_s
} | tee "$out"

commit_ms=
for s in $shapes; do
	case $s in
	1) run 1 1 1 $((300 * scale)); commit_ms=$last_p50 ;;
	8) run 8 8 1 $((2000 * scale)) ;;
	64) run 64 64 1 $((10000 * scale)) ;;
	256) run 256 256 1 $((30000 * scale)); full256=$last_tput ;;
	256x4) run 256x4 256 4 $((40000 * scale)) ;;
	half) [ -n "${full256:-}" ] && run half 256 1 $((15000 * scale)) "$(awk -v t="$full256" 'BEGIN { printf "%d", t / 2 }')" ;;
	esac
done | tee -a "$out"

if [ -n "$commit_ms" ]; then
	echo "# one commit (p50 at 1 connection): $commit_ms ms; 80% targets: 8 conns $(awk -v c="$commit_ms" 'BEGIN{printf "%.0f", 0.8*8000/c}')/s, 64 conns $(awk -v c="$commit_ms" 'BEGIN{printf "%.0f", 0.8*64000/c}')/s, 256 conns $(awk -v c="$commit_ms" 'BEGIN{printf "%.0f", 0.8*256000/c}')/s" | tee -a "$out"
fi
echo "# healthcare.patient.created has $(cat "$work/partitions" 2>/dev/null || echo ?) partitions; load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
