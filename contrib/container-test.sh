#!/usr/bin/env bash
# Test contrib/container-entrypoint.sh against a build tree, without a
# container runtime (CI machines cannot pull base images):
#
#   bash contrib/container-test.sh BUILDDIR
#
# Seeds an empty mappings volume, refuses one without mappings, runs
# `check`, then `run` with the embedded broker: the health check turns
# healthy, a sample sent over MLLP is acknowledged (AA/CA), SIGTERM exits 0, and the health
# check fails once the bridge is gone. Prints "N passed, N failed".
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: container-test.sh BUILDDIR}" && pwd)
entry=$src/contrib/container-entrypoint.sh
work=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
	chmod -R u+w "$work" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mllp=$(free_port)
http=$(free_port)
export HL7BRIDGE_BIN=$build/hl7bridge HL7BRIDGE_CONF=$build/conf/hl7bridge.conf.installed \
	HL7BRIDGE_MAPPINGS=$work/mappings HL7BRIDGE_MAPPINGS_DIST=$src/mappings \
	HL7BRIDGE_SCHEMAS=$src/conf/schemas HL7BRIDGE_DROP_DIR=$work/drop \
	HL7BRIDGE_MLLP_BIND=127.0.0.1:$mllp HL7BRIDGE_HTTP_BIND=0.0.0.0:$http \
	HL7BRIDGE_INSTANCE=container-test KAFKA_BROKERS=embedded
pass=0
fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
nok() { echo "FAIL $*"; fail=$((fail + 1)); }
cd "$work" || exit 1

# a mappings folder with files but no mapping (a wrong mount): a clear error
mkdir -p "$work/wrong" && echo x >"$work/wrong/notes.txt"
if out=$(HL7BRIDGE_MAPPINGS=$work/wrong bash "$entry" check 2>&1); then
	nok "a mappings folder without *.map was accepted"
elif grep -q 'no \*.map in' <<<"$out"; then
	ok "a mappings folder without *.map stops with an error"
else
	nok "a mappings folder without *.map: unexpected message: $out"
fi

# check: seeds the empty volume from the shipped mappings and passes
if out=$(bash "$entry" check 2>&1) && grep -q 'no errors' <<<"$out" &&
	[ -f "$work/mappings/hl7v2/rde_o11.map" ]; then
	ok "check on an empty volume: seeded, $(tail -n 1 <<<"$out")"
else
	nok "check: $out"
fi
# an edited mapping is kept (no reseeding)
echo "# edited" >>"$work/mappings/hl7v2/rde_o11.map"
bash "$entry" check >/dev/null 2>&1
tail -n 1 "$work/mappings/hl7v2/rde_o11.map" | grep -q edited && ok "an edited mapping is kept" ||
	nok "an edited mapping was overwritten"

# the health check fails while nothing listens
if bash "$entry" healthcheck 2>/dev/null; then nok "healthcheck passed with no bridge"; else ok "healthcheck fails with no bridge"; fi

# run: healthy, ready, AA for a sample, SIGTERM exits 0
bash "$entry" run 2>"$work/bridge.log" &
pid=$!
for _ in $(seq 1 120); do
	grep -q "ready in" "$work/bridge.log" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.25
done
if grep -q "ready in" "$work/bridge.log"; then ok "run: ready"; else nok "run: not ready: $(tail -n 5 "$work/bridge.log")"; fi
bash "$entry" healthcheck && ok "healthcheck: /healthz 200" || nok "healthcheck failed while running"
if out=$(bash "$entry" send "127.0.0.1:$mllp" "$src/samples/hl7v2/rde_o11.hl7" 2>&1) && grep -qE 'MSA-1=(AA|CA)' <<<"$out"; then
	ok "send through the entrypoint: $(grep -oE 'MSA-1=(AA|CA)' <<<"$out")"
else
	nok "send: $out"
fi
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=""
[ "$rc" -eq 0 ] && ok "SIGTERM: exit 0" || nok "SIGTERM: exit $rc"
if bash "$entry" healthcheck 2>/dev/null; then nok "healthcheck passed after stop"; else ok "healthcheck fails after stop"; fi
echo "container entrypoint: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
