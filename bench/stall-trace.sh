#!/usr/bin/env bash
# Where the server's stalls come from, as the runtime sees them: runs the load generator at RATE events/s (default
# 25,000) against a spawned server with a per-request latency log, records the runtime's GC and lock-contention events
# (with the waiting thread's stack) for WINDOW s (default 12) from 16 s after the start with dotnet-trace, and prints
# them in time order beside every 100 ms whose slowest 200 took SLOW ms (default 40) or more (bench/Tessera.StallTrace).
# Needs dotnet-trace (installed as a global tool when missing). Usage: [RATE=25000] [WINDOW=12] [SLOW=40] bench/stall-trace.sh
# Results: bench/results/stall-trace-<UTC>/ (loadgen.txt, latency.txt, trace.nettrace, stalls.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
trace=${DOTNET_TRACE:-$HOME/.dotnet/tools/dotnet-trace}
[ -x "$trace" ] || dotnet tool install -g dotnet-trace > /dev/null
out="bench/results/stall-trace-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
source bench/machine.sh
machine_txt "$out" "rate ${RATE:-25000} events/s, trace window ${WINDOW:-12} s"
dll=$PWD/src/Tessera.Cli/bin/Release/net10.0/tessera.dll
dotnet build bench/Tessera.StallTrace -c Release > /dev/null
dotnet bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll --label stall-trace --dll "$dll" --spawn tessera --rate "${RATE:-25000}" \
  --connections 64 --duration 30 --warmup 10 --latency-log "$out/latency.txt" > "$out/loadgen.txt" 2>&1 &
run=$!
sleep 16
pid=$(pgrep -f "$dll serve" | head -1)
"$trace" collect -p "$pid" --duration "00:00:00:$(printf %02d "${WINDOW:-12}")" -o "$out/trace.nettrace" \
  --providers 'Microsoft-Windows-DotNETRuntime:0x4001:5' > "$out/trace.log" 2>&1
wait "$run" || true
grep -E "latency ms|RESULT" "$out/loadgen.txt" | head -1
dotnet bench/Tessera.StallTrace/bin/Release/net10.0/Tessera.StallTrace.dll "$out/trace.nettrace" "$out/latency.txt" "${SLOW:-40}" | tee "$out/stalls.txt"
