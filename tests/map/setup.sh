#!/bin/sh
# Install the Python decoder the Avro cross-check uses into tests/map/.venv.
set -e
here=$(cd "$(dirname "$0")" && pwd)
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q -r "$here/requirements.txt"
echo "ok: $here/.venv/bin/python"
