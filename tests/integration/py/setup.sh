#!/usr/bin/env bash
# Create tests/integration/py/.venv with requirements.txt installed (again
# only when requirements.txt changed) and print the venv's python.
#
#   tests/integration/py/setup.sh      # then: HB_PYTHON=$(tests/integration/py/setup.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${HB_PY_VENV:-$here/.venv}
stamp="$venv/.requirements.txt"

if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
	echo "[py] installing $(grep -v '^#' "$here/requirements.txt" | tr '\n' ' ')into $venv" >&2
	rm -rf "$venv"
	python3 -m venv "$venv" >&2
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
		-r "$here/requirements.txt" >&2
	cp "$here/requirements.txt" "$stamp"
fi
echo "$venv/bin/python"
