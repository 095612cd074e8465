#!/usr/bin/env bash
# Checks, with curl alone, the Confluent Schema Registry calls hl7bridge
# relies on, against the registry that tests/services/registry.sh started
# (or $SCHEMA_REGISTRY_URL). Exit 77 (skip) when no registry is running.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
: "${HB_SERVICES_DIR:=$here/../services/.run}"
if [ -z "${SCHEMA_REGISTRY_URL:-}" ] && [ -f "$HB_SERVICES_DIR/registry.env" ]; then
	SCHEMA_REGISTRY_URL=$(sed -n 's/^SCHEMA_REGISTRY_URL=//p' "$HB_SERVICES_DIR/registry.env")
fi
if [ -z "${SCHEMA_REGISTRY_URL:-}" ]; then
	echo "no registry running (tests/services/registry.sh start); skipping"
	exit 77
fi
U=$SCHEMA_REGISTRY_URL
CT='Content-Type: application/vnd.schemaregistry.v1+json'
subject="hb-curl-$$-$(date +%s)-value"
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1: $2"; }

# req METHOD PATH [BODY]: sets $code and $out.
req() {
	local tmp
	tmp=$(mktemp)
	code=$(curl -s -o "$tmp" -w '%{http_code}' -X "$1" -H "$CT" ${3:+-d "$3"} "$U$2")
	out=$(cat "$tmp")
	rm -f "$tmp"
}

# json EXPR: evaluate a Python expression on $out parsed as j.
json() { python3 -c "import json,sys; j=json.loads(sys.argv[1]); print($1)" "$out" 2>/dev/null; }

# body SCHEMA_JSON: the Confluent request body {"schema": "<text>"}.
body() { python3 -c 'import json,sys; print(json.dumps({"schema": sys.argv[1]}))' "$1"; }

v1='{"type":"record","name":"AdtEvent","namespace":"org.hl7bridge.test","fields":[{"name":"event","type":"string"}]}'
v2_bad='{"type":"record","name":"AdtEvent","namespace":"org.hl7bridge.test","fields":[{"name":"event","type":"string"},{"name":"ward","type":"string"}]}'
v2_good='{"type":"record","name":"AdtEvent","namespace":"org.hl7bridge.test","fields":[{"name":"event","type":"string"},{"name":"ward","type":"string","default":""}]}'

req POST "/subjects/$subject/versions" "$(body "$v1")"
id=$(json 'j["id"]')
if [ "$code" = 200 ] && [ -n "$id" ]; then ok "register v1 (id $id)"; else not_ok "register v1" "$code $out"; fi

req POST "/subjects/$subject/versions" "$(body "$v1")"
if [ "$(json 'j["id"]')" = "$id" ]; then ok "re-register gives the same id"; else not_ok "re-register" "$code $out"; fi

# Compare parsed: the registry may return the schema text normalised.
req GET "/schemas/ids/$id"
same=$(python3 -c 'import json,sys; print(json.loads(json.loads(sys.argv[1])["schema"]) == json.loads(sys.argv[2]))' "$out" "$v1" 2>/dev/null)
if [ "$code" = 200 ] && [ "$same" = True ]; then ok "GET /schemas/ids/$id returns the schema"; else not_ok "GET /schemas/ids/$id" "$code $out"; fi

req PUT "/config/$subject" '{"compatibility":"BACKWARD"}'
if [ "$code" = 200 ] && [ "$(json 'j["compatibility"]')" = BACKWARD ]; then ok "set BACKWARD"; else not_ok "set BACKWARD" "$code $out"; fi

req POST "/compatibility/subjects/$subject/versions/latest" "$(body "$v2_bad")"
if [ "$code" = 200 ] && [ "$(json 'j["is_compatible"]')" = False ]; then ok "compatibility check: incompatible"; else not_ok "compatibility check (bad)" "$code $out"; fi

req POST "/compatibility/subjects/$subject/versions/latest" "$(body "$v2_good")"
if [ "$code" = 200 ] && [ "$(json 'j["is_compatible"]')" = True ]; then ok "compatibility check: compatible"; else not_ok "compatibility check (good)" "$code $out"; fi

req POST "/subjects/$subject/versions" "$(body "$v2_bad")"
if [ "$code" = 409 ]; then ok "incompatible registration refused with 409"; else not_ok "incompatible registration" "$code $out"; fi

req POST "/subjects/$subject/versions" "$(body "$v2_good")"
if [ "$code" = 200 ]; then ok "compatible registration accepted"; else not_ok "compatible registration" "$code $out"; fi

req GET "/subjects/$subject/versions"
if [ "$(json 'j')" = "[1, 2]" ]; then ok "two versions listed"; else not_ok "versions" "$code $out"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
