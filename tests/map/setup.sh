#!/bin/sh
# Install the Python decoder the Avro cross-check uses into tests/map/.venv.
# Idempotent, and safe to run from parallel tests (one installs, others wait).
set -e
here=$(cd "$(dirname "$0")" && pwd)
exec 9>"$here/.venv.lock"
flock 9
if "$here/.venv/bin/python" -c "import fastavro" 2>/dev/null; then
	exit 0
fi
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q -r "$here/requirements.txt"
echo "ok: $here/.venv/bin/python"
