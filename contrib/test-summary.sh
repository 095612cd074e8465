#!/usr/bin/env bash
# Add up the results of every test log under the given build directories and
# print Criterion's synthesis line and the plain "N passed, N failed" line.
# A test program that failed outside Criterion (a service that did not start,
# a JavaScript check, a crash before any test ran) counts as one failure.
# Exits 0; it only reports.
tested=0 passing=0 failing=0 crashing=0 other=0
while IFS= read -r -d '' trs; do
	log=${trs%.trs}.log
	t=0 p=0 f=0 c=0
	while IFS= read -r line; do
		set -- $(printf '%s\n' "$line" | sed 's/\x1b\[[0-9;]*m//g' |
			sed -n 's/.*Tested: \([0-9]*\) | Passing: \([0-9]*\) | Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1 \2 \3 \4/p')
		[ $# -eq 4 ] || continue
		t=$((t + $1)) p=$((p + $2)) f=$((f + $3)) c=$((c + $4))
	done < <(grep -a 'Synthesis: Tested:' "$log" 2>/dev/null)
	tested=$((tested + t)) passing=$((passing + p)) failing=$((failing + f)) crashing=$((crashing + c))
	if grep -q -E '^:test-result: (FAIL|ERROR)' "$trs" && [ $((f + c)) -eq 0 ]; then
		other=$((other + 1))
		echo "failed outside Criterion: ${log}"
	fi
done < <(find "${@:-.}" -name '*.trs' -print0 2>/dev/null)
echo "[====] Synthesis: Tested: $tested | Passing: $passing | Failing: $failing | Crashing: $crashing"
echo "$passing passed, $((failing + crashing + other)) failed"
