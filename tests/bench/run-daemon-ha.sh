#!/usr/bin/env bash
# The shared ledger's cost (issue 13): the daemon benchmark's load against
#   off   one instance, [ledger] shared = off (each instance knows only its own commits)
#   one   one instance, shared = on (every new message waits for a barrier)
#   two   two instances, shared = on, same state topic, behind a round-robin
#         sender: the connections are dealt to the instances alternately, as a
#         TCP load balancer does (two `hl7bridge send`, half the connections
#         and messages each; msgs/s = all messages / the slower one's time)
#
#   tests/bench/run-daemon-ha.sh [BUILDDIR]
#
# Needs HB_KAFKA_BOOTSTRAP (a running broker). Knobs: CONNS (default "1 64
# 256"), MSGS_PER_CONN (default 40, at least 300 in all). Prints one line per
# run: msgs/s, the ACK latency p50/p99 (the worse sender's), a message's
# barrier wait p50/p99 from the daemons' exit line, and how many messages one
# ListOffsets served (msgs/LO). Writes $OUT (default
# BUILDDIR/bench-daemon-ha.txt).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
out=${OUT:-$build/bench-daemon-ha.txt}
conns_list=${CONNS:-"1 64 256"}
per=${MSGS_PER_CONN:-40}
: "${HB_KAFKA_BOOTSTRAP:?set HB_KAFKA_BOOTSTRAP (a running broker)}"
make -C "$build" -s -j2 hl7bridge

work=$(mktemp -d "${TMPDIR:-/tmp}/hl7bridge-bench-ha.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$work"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM
run_id=$(date +%s)-$$

gen() { # gen N TAG
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

conf() { # conf INSTANCE STATE SHARED
	cat <<EOF
[bridge]
instance = $1
mappings = $src/mappings
schemas = $src/conf/schemas
[kafka]
bootstrap.servers = $HB_KAFKA_BOOTSTRAP
[topics]
state = $2
[ledger]
shared = $3
[http]
bind = 127.0.0.1:0
[listener bench]
bind = 127.0.0.1:0
max.connections = 1024
max.connections.per.peer = 0
EOF
}

start() { # start NAME STATE SHARED -> sets port
	conf "$1" "$2" "$3" >"$work/$1.conf"
	rm -f "$work/ready"
	mkfifo "$work/ready"
	"$build/hl7bridge" run -c "$work/$1.conf" --ready-fd 3 3>"$work/ready" 2>"$work/$1.log" &
	pids+=($!)
	local word
	read -r word port _ <"$work/ready" || true
	[ -n "$port" ] || { echo "daemon did not start: $(tail -3 "$work/$1.log")" >&2; exit 1; }
}

stop_all() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
	pids=()
}

# run MODE CONNS
run() {
	local mode=$1 conns=$2 n=$(($2 * per)) state="bench.ha-$run_id-$1-$2" tag="H$run_id-$1-$2"
	[ "$n" -ge 300 ] || n=300
	local ninst=1 shared=on
	[ "$mode" = off ] && shared=off
	[ "$mode" = two ] && ninst=2
	local ports=() half=$((n / ninst)) hc=$(((conns + ninst - 1) / ninst))
	for i in $(seq 1 "$ninst"); do
		start "bench-$run_id-$mode-$conns-$i" "$state" "$shared"
		ports+=("$port")
		gen "$half" "$tag-$i" >"$work/in-$i.hl7"
	done
	local t0 t1 spids=()
	t0=$(date +%s.%N)
	for i in $(seq 1 "$ninst"); do
		"$build/hl7bridge" send --quiet --connections "$hc" --timeout 60 "127.0.0.1:${ports[$((i - 1))]}" \
			"$work/in-$i.hl7" 2>"$work/send-$i" &
		spids+=($!)
	done
	for p in "${spids[@]}"; do wait "$p" || echo "a sender failed: $(cat "$work"/send-*)" >&2; done
	t1=$(date +%s.%N)
	stop_all
	local ok=0 p50=0 p99=0 b50=- b99=- nb=0 nw=0
	for i in $(seq 1 "$ninst"); do
		ok=$((ok + $(sed -n 's/.*AA\/CA \([0-9]*\),.*/\1/p' "$work/send-$i")))
		read -r a b < <(sed -n 's/.*p50 \([0-9.]*\) p99 \([0-9.]*\).*/\1 \2/p' "$work/send-$i")
		p50=$(awk -v x="$p50" -v y="$a" 'BEGIN { print (y > x ? y : x) }')
		p99=$(awk -v x="$p99" -v y="$b" 'BEGIN { print (y > x ? y : x) }')
		local bl
		bl=$(grep -h "shared ledger:" "$work"/bench-"$run_id"-"$mode"-"$conns"-"$i".log | tail -1 || true)
		[ -n "$bl" ] && {
			b50=$(sed -n 's/.*barrier p50 \([0-9.]*\) ms.*/\1/p' <<<"$bl")
			b99=$(sed -n 's/.*p99 \([0-9.]*\) ms max.*/\1/p' <<<"$bl")
			nb=$((nb + $(sed -n 's/.*: \([0-9]*\) barriers.*/\1/p' <<<"$bl")))
			nw=$((nw + $(sed -n 's/.* barriers for \([0-9]*\) .*/\1/p' <<<"$bl")))
		}
	done
	local tput
	tput=$(awk -v n="$ok" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
	printf '%-4s %5d %7d %7d %9s %8s %8s %10s %10s %9s\n' "$mode" "$conns" "$n" "$ok" "$tput" "$p50" "$p99" \
		"$b50" "$b99" "$( [ "$nb" -gt 0 ] && awk -v w="$nw" -v b="$nb" 'BEGIN { printf "%.1f", w / b }' || echo -)"
}

{
echo "# hl7bridge shared-ledger benchmark, $(date -u +%FT%TZ), git $(cd "$src" && git rev-parse --short HEAD)"
echo "# machine: $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %5s %7s %7s %9s %8s %8s %10s %10s %9s\n' mode conns msgs AA msgs/s p50_ms p99_ms barrier50 barrier99 msgs/LO
} | tee "$out"
for c in $conns_list; do
	for m in off one two; do
		run "$m" "$c"
	done
done | tee -a "$out"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
