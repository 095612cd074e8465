#!/usr/bin/env bash
# hl7bridge in one command, on a fresh Debian machine:
#
#   bash contrib/quickstart.sh
#
# Installs what is missing, builds, starts `hl7bridge run` with the shipped
# configuration and the embedded Kafka broker (in-process, NOT durable),
# sends every HL7v2 sample over MLLP and prints each ACK, drops every FHIR
# sample into the file drop, then prints the events a read_committed consumer
# sees, and stops the bridge.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$(bash contrib/build.sh)
bin=$build/hl7bridge
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
http=$(free_port)
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		wait "$pid" || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "== starting hl7bridge (embedded broker, MLLP on 127.0.0.1:$port)"
HL7BRIDGE_MLLP_BIND=127.0.0.1:$port HL7BRIDGE_HTTP_BIND=127.0.0.1:$http \
	HL7BRIDGE_DROP_DIR=$work/drop KAFKA_BROKERS=embedded \
	"$bin" run -c conf/hl7bridge.conf 2>"$work/bridge.log" &
pid=$!
for _ in $(seq 1 120); do
	grep -q "ready in" "$work/bridge.log" && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/bridge.log"; echo "hl7bridge did not start"; exit 1; }
	sleep 0.25
done
grep -q "ready in" "$work/bridge.log" || { cat "$work/bridge.log"; echo "hl7bridge did not become ready"; exit 1; }
broker=$(sed -n 's/^embedded Kafka broker: \([^ ]*\).*/\1/p' "$work/bridge.log")
grep -E "EMBEDDED BROKER|mappings loaded|ready in" "$work/bridge.log" | cut -c1-160

echo
echo "== sending every sample in samples/hl7v2/ (each ACK comes after the Kafka commit)"
"$bin" send "127.0.0.1:$port" samples/hl7v2/*.hl7 || true

echo
echo "== dropping every FHIR sample (JSON, XML, Bundle, NDJSON) into the file drop"
mkdir -p "$work/drop/inbox"
for f in samples/fhir/*; do
	# write under a dot-name, then rename: only complete files are taken
	cp "$f" "$work/drop/inbox/.$(basename "$f")"
	mv "$work/drop/inbox/.$(basename "$f")" "$work/drop/inbox/$(basename "$f")"
done
for _ in $(seq 1 120); do
	[ -z "$(ls -A "$work/drop/inbox")" ] && [ -z "$(ls -A "$work/drop/work/"* 2>/dev/null)" ] && break
	sleep 0.25
done
ls "$work/drop/done" | sed 's/^/done\//'
grep -E "drop: inbox: .* done:" "$work/bridge.log" | sed 's/^.*drop: /  /' | cut -c1-120

echo
echo "== events a read_committed consumer sees on $broker"
topics=$(sed -n 's/^events *= *//p' conf/hl7bridge.conf | tr -d ' ' | tr ',' '\n' | sed 's/^/healthcare./')
"$bin" consume -b "$broker" --from-beginning --timeout 3 $topics healthcare.deadletter |
	python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    v = r["value"]
    print("%-36s key=%-8s %s" % (r["topic"], r["key"], json.dumps(v.get("data", v) if isinstance(v, dict) else v)[:150]))
'
echo
echo "== what the operators' endpoints say (http://127.0.0.1:$http/ is the status page)"
curl -s "http://127.0.0.1:$http/metrics" | grep -E '^hl7bridge_(messages_received_total|messages_published_total|files_total|transactions_committed_total)' | head -12

echo
echo "== stopping (SIGTERM: in-flight messages are committed and acknowledged first)"
kill -TERM "$pid"
wait "$pid" && echo "hl7bridge exited 0"
pid=""
echo
echo "Next: README.md — point it at a real Kafka (KAFKA_BROKERS, SASL/SSL), write a mapping."
