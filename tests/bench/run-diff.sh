#!/bin/sh
# Differential test against HAPI HL7v2: every non-empty subcomponent of each
# message in tests/fixtures/hl7/diff, unescaped, as read by this library
# (tests/bench/hl7_dump) and by HAPI's generic model (tests/bench/hapi), must
# be equal. Needs a build with `make bench` done; HB_BUILDDIR picks it
# (default: the source dir). Prints one line per message and a summary;
# exits 1 on any difference.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${HB_BUILDDIR:-$src}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$src/tests/bench/hapi" && mvn -q -B -Dstyle.color=never package -DskipTests)
cp_hapi="$src/tests/bench/hapi/target/hapi-bench-1.jar:$(ls "$src"/tests/bench/hapi/target/lib/*.jar | tr '\n' ':')"

files=$(ls "$src"/tests/fixtures/hl7/diff/*.hl7)
# shellcheck disable=SC2086
"$build/tests/bench/hl7_dump" $files > "$work/c.txt"
# shellcheck disable=SC2086
java -cp "$cp_hapi" hb.Bench dump $files > "$work/hapi.txt"

split_dump() { # one sorted file per message
	awk -v dir="$work/$2" 'BEGIN { system("mkdir -p " dir) }
		/^# / { f = dir "/" $2; next } { print > f }' "$1"
	for f in "$work/$2"/*; do sort -o "$f" "$f"; done
}
split_dump "$work/c.txt" c
split_dump "$work/hapi.txt" hapi

total=0 same=0 values=0
for f in $files; do
	n=$(basename "$f")
	total=$((total + 1))
	values=$((values + $(wc -l < "$work/c/$n")))
	if cmp -s "$work/c/$n" "$work/hapi/$n"; then
		same=$((same + 1))
		echo "same $n"
	else
		echo "DIFF $n"
		diff "$work/c/$n" "$work/hapi/$n" | head -10 | sed 's/^/    /'
	fi
done
echo "differential: $same/$total messages identical, $values values compared"
[ "$same" -eq "$total" ]
