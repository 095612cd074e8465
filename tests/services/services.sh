#!/usr/bin/env bash
# Start or stop every service the integration tests use (Kafka, Schema
# Registry) and gather their variables into $HB_SERVICES_DIR/env:
#
#   tests/services/services.sh start     # then: set -a; . tests/services/.run/env; set +a
#   tests/services/services.sh stop
#   tests/services/services.sh install   # download/build only (cached)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SERVICES="kafka registry"

case "${1:-}" in
install)
	for s in $SERVICES; do "$here/$s.sh" install; done ;;
start)
	for s in $SERVICES; do "$here/$s.sh" start >/dev/null; done
	cat "$HB_SERVICES_DIR"/kafka.env "$HB_SERVICES_DIR"/registry.env >"$HB_SERVICES_DIR/env"
	cat "$HB_SERVICES_DIR/env" ;;
stop)
	rc=0
	for s in $SERVICES; do "$here/$s.sh" stop || rc=1; done
	rm -f "$HB_SERVICES_DIR/env"
	exit $rc ;;
*) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
