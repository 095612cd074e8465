#!/bin/sh
# HAPI FHIR comparison, in one run:
#  1. bench_fhir reads a ~5 KB MedicationRequest and a ~1 MB Bundle (JSON and
#     XML) and writes the same files; HAPI FHIR then parses those files.
#  2. Differential test: HAPI writes 32 resources as JSON and XML with its
#     FHIRPath answers for exprs.txt; diff_fhir_hapi checks our trees and
#     our answers against them.
# Usage: tests/bench/hapi-fhir/run.sh [seconds-per-case] (HB_BUILDDIR: the
# configured build directory, default ./build). Needs Maven and Java 17.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
builddir=${HB_BUILDDIR:-$top/build}
seconds=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$here" && mvn -B -q package -DskipTests)
cp="$here/target/classes"
for j in "$here"/target/lib/*.jar; do cp="$cp:$j"; done

make -C "$builddir" tests/bench/bench_fhir tests/bench/diff_fhir_hapi >/dev/null
echo "# machine: $(uname -m), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# java: $(java -version 2>&1 | head -1)"
HB_SRCDIR="$top" "$builddir/tests/bench/bench_fhir" -s "$seconds" -w "$work" | tee "$work/bench.txt"
entries=$(sed -n 's/^# bundle: \([0-9]*\) .*/\1/p' "$work/bench.txt")
java -cp "$cp" hl7bridge.HapiBench "$work" "$seconds" $((entries + 1))

java -cp "$cp" hl7bridge.HapiDiff "$work/diff" "$here/exprs.txt"
"$builddir/tests/bench/diff_fhir_hapi" "$work/diff" "$here/exprs.txt"
