#!/usr/bin/env bash
# Where the server's CPU goes, by what it is doing: runs the load generator against a spawned server (flat out, or
# RATE events/s) with the JIT writing its perf map (DOTNET_PerfMapEnabled=1; DOTNET_EnableWriteXorExecute=0 so perf
# can place the JIT's code), records every thread's call stacks with `perf record -g` for WINDOW s (default 12) from
# 15 s after the start, and groups the samples by thread and by category (zstd, the engine, the properties' typing,
# validation, DuckDB, the GC, the kernel...) with bench/cpu-profile.py. Needs `perf` (Debian: linux-perf) and root or
# kernel.perf_event_paranoid <= 1. Usage: [RATE=25000] [WINDOW=12] bench/cpu-profile.sh [runs].
# Results: bench/results/cpu-profile-<UTC>/ (load-N.txt, perf-N.txt as `perf script` wrote it, categories-N.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf > /dev/null || { echo "perf is not installed (Debian: apt-get install linux-perf)"; exit 1; }
runs=${1:-1}
window=${WINDOW:-12}
out="bench/results/cpu-profile-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
source bench/machine.sh
machine_txt "$out" "$(rate_label), perf window ${window} s"
dll=$PWD/src/Tessera.Cli/bin/Release/net10.0/tessera.dll

for i in $(seq 1 "$runs"); do
  DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 \
    dotnet bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll --label "cpu-$i" --dll "$dll" --spawn tessera --connections 64 \
    ${RATE:+--rate "$RATE"} --duration $((window + 10)) --warmup 10 > "$out/load-$i.txt" 2>&1 &
  loadgen=$!
  pid=$(spawned_server_pid "$dll" "$out/load-$i.txt")
  sleep 15
  perf record -F 1999 -g -p "$pid" -o "$out/perf-$i.data" -- sleep "$window" > /dev/null 2>&1
  wait "$loadgen" || true
  perf script -i "$out/perf-$i.data" > "$out/perf-$i.txt" 2> /dev/null
  rm -f "$out/perf-$i.data" "/tmp/perf-$pid.map"
  grep -E "accepted|server:" "$out/load-$i.txt" | sed "s/^/run $i: /"
  python3 bench/cpu-profile.py "$out/perf-$i.txt" | tee "$out/categories-$i.txt"
done
