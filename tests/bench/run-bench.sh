#!/bin/sh
# Benchmark: parse + read 10 fields + unescape, on the same bytes, with this
# library (bench_hl7), HAPI HL7v2 (Java, tests/bench/hapi) and python-hl7
# (tests/bench/python), one after another in this run. Needs `make bench`;
# HB_BUILDDIR picks the build (default: the source dir). Each comparison
# installs its own dependencies (Maven, a Python venv).
# Usage: run-bench.sh [seconds-per-message]
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${HB_BUILDDIR:-$src}
secs=${1:-3}
export HB_SRCDIR="$src"

echo "# machine: $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc) cpus"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), ${secs}s per message"
"$build/tests/bench/bench_hl7" "$secs"

(cd "$src/tests/bench/hapi" && mvn -q -B -Dstyle.color=never package -DskipTests)
cp_hapi="$src/tests/bench/hapi/target/hapi-bench-1.jar:$(ls "$src"/tests/bench/hapi/target/lib/*.jar | tr '\n' ':')"
echo "# $(java -version 2>&1 | head -1)"
java -cp "$cp_hapi" hb.Bench bench "$src" "$secs"

venv="$src/tests/bench/python/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$src/tests/bench/python/requirements.txt"
echo "# $("$venv/bin/python" --version)"
"$venv/bin/python" "$src/tests/bench/python/bench_hl7.py" "$secs"
