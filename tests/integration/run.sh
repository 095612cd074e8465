#!/usr/bin/env bash
# Integration test driver (an automake TESTS entry, run by `make check`).
#
# Uses the services named by HB_KAFKA_BOOTSTRAP / SCHEMA_REGISTRY_URL when
# they are already exported (CI starts them once, up front); otherwise
# starts Kafka and the Schema Registry itself and always stops them again.
# Then runs every integration program ($INTEGRATION_TESTS) and the
# JavaScript interop checks (which also run the Python client in
# tests/integration/py), and fails if any of them failed.
set -u
if [ "${HB_INTEGRATION:-yes}" = no ]; then
	echo "integration tests disabled (./configure --disable-integration-tests)"
	exit 77
fi
src=${HB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HB_BUILDDIR:-$PWD}
services="$src/tests/services/services.sh"

if [ -z "${HB_KAFKA_BOOTSTRAP:-}" ] || [ -z "${SCHEMA_REGISTRY_URL:-}" ]; then
	trap '"$services" stop' EXIT
	trap 'exit 130' INT TERM
	"$services" start || { echo "could not start the test services" >&2; exit 99; }
	set -a
	. "${HB_SERVICES_DIR:-$src/tests/services/.run}/env"
	set +a
fi
echo "Kafka: $HB_KAFKA_BOOTSTRAP (Apache Kafka ${HB_KAFKA_VERSION:-?})"
echo "Schema Registry: $SCHEMA_REGISTRY_URL (${HB_REGISTRY_VERSION:-?})"

failed=0
for t in ${INTEGRATION_TESTS:-tests/integration/test_kafka_txn tests/integration/test_registry}; do
	echo "== $t"
	"$build/$t" --verbose=0 --jobs=2 || { echo "FAILED: $t"; failed=1; }
done

# The Python client of the interop test (js/interop.test.js runs it): a venv
# with tests/integration/py/requirements.txt, made once.
HB_PYTHON=$("$src/tests/integration/py/setup.sh") ||
	{ echo "FAILED: tests/integration/py/setup.sh"; failed=1; }
export HB_PYTHON

# JavaScript checks: interop (js/) and the pages in headless Chromium
# (browser/; screenshots go to $HB_BUILDDIR/artifacts/). Each folder
# installs its own npm dependencies on first use, and again when its
# package.json changed since.
export HB_SRCDIR="$src" HB_BUILDDIR="$build"
for js in "$src"/tests/integration/js/*.test.js "$src"/tests/integration/browser/*.test.js; do
	[ -e "$js" ] || continue
	dir=$(dirname "$js")
	echo "== $(basename "$dir")/$(basename "$js")"
	if [ ! -d "$dir/node_modules" ] || [ "$dir/package.json" -nt "$dir/node_modules" ]; then
		(cd "$dir" && npm install --no-audit --no-fund --silent && touch node_modules) ||
			{ echo "FAILED: npm install in $dir"; failed=1; continue; }
	fi
	node "$js" || { echo "FAILED: $js"; failed=1; }
done
exit $failed
