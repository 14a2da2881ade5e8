#!/usr/bin/env bash
# Where the server's garbage comes from at a given rate: starts Tessera under the load generator (RATE events/s,
# default 10,000, with the audience probe), records DURATION s (default 8) of its allocations with dotnet-trace
# (installed into bench/.tools when missing) after WARMUP s (default 20), and sums them by type and by method
# (bench/Tessera.AllocProfile). Results: bench/results/alloc-<UTC time>/.
# Usage: bench/alloc.sh   env: RATE, WARMUP, DURATION, SKIP_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
out="bench/results/alloc-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out" bench/.tools
[ -n "${SKIP_BUILD:-}" ] || dotnet build Tessera.slnx -c Release -nologo -v q > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
[ -x bench/.tools/dotnet-trace ] || dotnet tool install --tool-path bench/.tools dotnet-trace > "$out/tool.log"
warmup=${WARMUP:-20}
duration=${DURATION:-8}
source bench/machine.sh
machine_txt "$out"
dotnet bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll --label alloc --spawn tessera --rate "${RATE:-10000}" --connections 32 \
  --duration $((duration + 10)) --warmup "$warmup" --probe-audience > "$out/load.txt" 2>&1 &
loadgen=$!
sleep $((warmup + 3))
pid=$(pgrep -f "tessera.dll serve --urls http://127.0.0.1" | head -1)
bench/.tools/dotnet-trace collect -p "$pid" --profile gc-verbose --duration "00:00:$(printf '%02d' "$duration")" -o "$out/server.nettrace" > "$out/trace.log" 2>&1
wait "$loadgen" || true
grep -E "accepted|probe|server:" "$out/load.txt" || true
dotnet bench/Tessera.AllocProfile/bin/Release/net10.0/Tessera.AllocProfile.dll "$out/server.nettrace" | tee "$out/allocations.txt"
