#!/usr/bin/env bash
# FHIR over HTTP end to end (POST [base]/Patient → map → committed Kafka
# transaction → 201) against the MLLP path on the same daemon build, at 1,
# 64 and 256 connections with one request in flight each.
#
#   tests/bench/run-fhir-http.sh [BUILDDIR]
#
# For each shape: a fresh daemon with a [fhir] and a [listener] section;
# bench_fhir_http drives the FHIR endpoint for SECS seconds (default 5,
# every Patient distinct: each request is a real commit), then `hl7bridge
# send` sends as many distinct ADT^A01 messages over MLLP on as many
# connections. Prints requests/s and latency p50/p99 for both, and the ratio
# (target: FHIR >= 80% of MLLP's msgs/s). Starts Kafka with
# tests/services/kafka.sh unless HB_KAFKA_BOOTSTRAP is set. SHAPES="1 64"
# picks a subset. Writes $OUT (default BUILDDIR/bench-fhir-http.txt).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
secs=${SECS:-5}
out=${OUT:-$build/bench-fhir-http.txt}
shapes=${SHAPES:-"1 64 256"}

make -C "$build" -s -j2 hl7bridge tests/bench/bench_fhir_http

work=$(mktemp -d "${TMPDIR:-/tmp}/hl7bridge-fbench.XXXXXX")
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

gen() { # gen N TAG: N distinct ADT^A01 messages
	awk -v n="$1" -v tag="$2" '
	BEGIN { ORS = "\r" }
	{
		for (i = 1; i <= n; i++) {
			id = tag "-" i
			print "MSH|^~\\&|BENCH|BENCHHOSP|HL7BRIDGE|CMM|20261127070000||ADT^A01^ADT_A01|" id "|P|2.5.1"
			print "EVN|A01|20261127070000"
			print "PID|1||" id "^^^BENCHHOSP^MR||Example^Sam^J||19800101|F"
			print "PV1|1|I|WARD1^101^A"
		}
	}' <<<"x"
}

start_daemon() { # start_daemon NAME: sets dpid, fport, mport
	cat >"$work/$1.conf" <<CONF
[bridge]
instance = fbench-$run_id-$1
mappings = $src/mappings
schemas = $src/conf/schemas
[kafka]
bootstrap.servers = $HB_KAFKA_BOOTSTRAP
[topics]
state = bench.fstate-$run_id-$1
[http]
bind = 127.0.0.1:0
[listener bench]
bind = 127.0.0.1:0
max.connections = 1024
max.connections.per.peer = 0
[fhir bench]
bind = 127.0.0.1:0
max.connections = 1024
max.connections.per.peer = 0
CONF
	rm -f "$work/ready"
	mkfifo "$work/ready"
	"$build/hl7bridge" run -c "$work/$1.conf" --ready-fd 3 3>"$work/ready" 2>"$work/$1.log" &
	dpid=$!
	local line
	read -r line <"$work/ready" || true
	mport=$(awk '{ print $2 }' <<<"$line")
	fport=$(sed -n 's/.* fhir=\([0-9]*\).*/\1/p' <<<"$line")
	[ -n "$fport" ] || { echo "daemon did not start: see $work/$1.log" >&2; exit 1; }
}

stop_daemon() {
	kill -TERM "$dpid"
	wait "$dpid" || true
	dpid=
}

{
echo "# FHIR over HTTP vs MLLP, $(date -u +%FT%TZ), git $(cd "$src" && git rev-parse --short HEAD), ${secs}s per shape"
echo "# machine: $(nproc) cores, $(uname -sr); load before: $(cut -d' ' -f1-3 /proc/loadavg); Kafka $HB_KAFKA_BOOTSTRAP"
printf '%5s  %10s %8s %8s  %10s %8s %8s  %6s\n' conns fhir_req/s p50_ms p99_ms mllp_msg/s p50_ms p99_ms ratio
} | tee "$out"
for c in $shapes; do
	start_daemon "c$c"
	"$build/tests/bench/bench_fhir_http" "$fport" "$c" "$secs" "F$run_id-$c" >"$work/f$c.txt" || true
	stop_daemon
	read -r freq fp50 fp99 < <(sed -n 's/.*s, \([0-9]*\) req\/s, latency ms p50 \([0-9.]*\) p99 \([0-9.]*\).*/\1 \2 \3/p' "$work/f$c.txt")
	n=$(sed -n 's/.*: \([0-9]*\) requests.*/\1/p' "$work/f$c.txt")
	start_daemon "m$c"
	gen "${n:-1000}" "M$run_id-$c" >"$work/m$c.hl7"
	"$build/hl7bridge" send --quiet --connections "$c" --pipeline 1 --timeout 60 \
		"127.0.0.1:$mport" "$work/m$c.hl7" 2>"$work/m$c.send" || true
	stop_daemon
	mtput=$(sed -n 's/.* \([0-9.]*\) msgs\/s.*/\1/p' "$work/m$c.send")
	read -r mp50 mp99 < <(sed -n 's/.*p50 \([0-9.]*\) p99 \([0-9.]*\).*/\1 \2/p' "$work/m$c.send")
	printf '%5d  %10s %8s %8s  %10s %8s %8s  %6s\n' "$c" "${freq:-?}" "${fp50:-?}" "${fp99:-?}" \
		"${mtput:-?}" "${mp50:-?}" "${mp99:-?}" \
		"$(awk -v f="${freq:-0}" -v m="${mtput:-0}" 'BEGIN { if (m > 0) printf "%.0f%%", 100 * f / m; else print "?" }')"
done | tee -a "$out"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
