#!/usr/bin/env bash
# Add up the Criterion results of every test log under the given build
# directories and print one synthesis line, plus the plain
# "N passed, N failed" line. Exits 0; it only reports.
tested=0 passing=0 failing=0 crashing=0
while IFS= read -r line; do
	set -- $(echo "$line" | sed -n 's/.*Tested: \([0-9]*\) | Passing: \([0-9]*\) | Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1 \2 \3 \4/p')
	[ $# -eq 4 ] || continue
	tested=$((tested + $1)) passing=$((passing + $2)) failing=$((failing + $3)) crashing=$((crashing + $4))
done < <(find "${@:-.}" -name '*.log' ! -name test-suite.log ! -name config.log -path '*tests*' -print0 |
	xargs -0 -r grep -h -a 'Synthesis: Tested:' 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g')
echo "[====] Synthesis: Tested: $tested | Passing: $passing | Failing: $failing | Crashing: $crashing"
echo "$passing passed, $((failing + crashing)) failed"
