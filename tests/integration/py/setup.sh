#!/usr/bin/env bash
# Create tests/integration/py/.venv with requirements.txt installed (again
# only when requirements.txt changed) and print the venv's python.
#
#   tests/integration/py/setup.sh      # then: HB_PYTHON=$(tests/integration/py/setup.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# HB_PY_REQUIREMENTS=fhir-requirements.txt: another set, in its own venv.
req=$here/${HB_PY_REQUIREMENTS:-requirements.txt}
venv=${HB_PY_VENV:-$here/.venv${HB_PY_REQUIREMENTS:+-${HB_PY_REQUIREMENTS%.txt}}}
stamp="$venv/.requirements.txt"

if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$stamp"; then
	echo "[py] installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv" >&2
	rm -rf "$venv"
	python3 -m venv "$venv" >&2
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
		-r "$req" >&2
	cp "$req" "$stamp"
fi
echo "$venv/bin/python"
