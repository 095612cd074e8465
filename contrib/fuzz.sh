#!/usr/bin/env bash
# Run every libFuzzer target built in BUILDDIR for SECONDS each, on its seed
# corpus (tests/fuzz/corpus/<target>/) plus a scratch corpus. Crashes are
# written to BUILDDIR/fuzz-artifacts/ and fail the run.
#
#   mkdir build-fuzz && cd build-fuzz && ../configure CC=clang --enable-fuzzers && make fuzz && cd ..
#   bash contrib/fuzz.sh build-fuzz 600
set -euo pipefail
build=${1:?usage: contrib/fuzz.sh BUILDDIR [SECONDS]}
secs=${2:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build/fuzz-artifacts"
status=0
shopt -s nullglob
for bin in "$build"/tests/fuzz/fuzz_*; do
	[ -x "$bin" ] && [ -f "$bin" ] || continue
	name=$(basename "$bin")
	work="$build/fuzz-corpus/$name"
	mkdir -p "$work"
	seeds=()
	[ -d "$src/tests/fuzz/corpus/$name" ] && seeds=("$src/tests/fuzz/corpus/$name")
	echo "== $name for ${secs}s"
	if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$build/fuzz-artifacts/$name-" "$work" "${seeds[@]}" \
		>"$build/fuzz-artifacts/$name.log" 2>&1; then
		echo "FAILED: $name (see $build/fuzz-artifacts/$name.log)"
		tail -n 30 "$build/fuzz-artifacts/$name.log"
		status=1
	else
		grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$build/fuzz-artifacts/$name.log" | tr '\n' ' '
		echo
	fi
done
exit $status
