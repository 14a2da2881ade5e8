#!/usr/bin/env bash
# The server's memory at rest on a filled store: what the engine holds for its profiles. Starts `tessera serve` on a
# copy of STORE (e.g. the 1,000,000-profile file Tessera.AudienceBench fills), times start to /health, waits 15 s, then
# prints the resident memory and, with dotnet-counters installed (dotnet tool install -g dotnet-counters), the GC's
# committed memory and gen2 size. RUNS times (default 2); with BASELINE=/path/to/another/checkout (built:
# src/Tessera.Cli) that build runs too, interleaved. Results: bench/results/engine-memory-<UTC time>/.
# Usage: [BASELINE=dir] bench/engine-memory.sh STORE.duckdb [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:?usage: bench/engine-memory.sh STORE.duckdb [runs]}
runs=${2:-2}
out="bench/results/engine-memory-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
source bench/machine.sh
machine_txt "$out" "store $store ($(du -h "$store" | cut -f1))${BASELINE:+, baseline $(git -C "$BASELINE" rev-parse --short HEAD)}"
counters=~/.dotnet/tools/dotnet-counters
port=18097

measure() {  # label, dll
  local label=$1 dll=$2 data pid start up rss gc=""
  data=$(mktemp -d)
  cp "$store" "$data/tessera.duckdb"
  start=$(date +%s.%N)
  TESSERA_ADMIN_TOKEN=adm_mem TESSERA_WRITE_KEY=wk_mem dotnet "$dll" serve --urls "http://127.0.0.1:$port" --data-dir "$data" > "$out/$label.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/health" > /dev/null; do
    kill -0 "$pid" 2> /dev/null || { echo "$label: the server exited; see $out/$label.log"; rm -rf "$data"; return 1; }
    sleep 0.1
  done
  up=$(echo "$(date +%s.%N) - $start" | bc)
  sleep 15
  rss=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
  if [ -x "$counters" ]; then
    "$counters" collect -p "$pid" --refresh-interval 1 --format csv -o "$out/$label-counters.csv" --counters System.Runtime --duration 00:00:03 > /dev/null 2>&1 || true
    gc=$(awk -F, '/memory.committed_size/ {c = $5} /generation=gen2\]/ && /heap.size/ {g = $5} END {if (c) printf ", gc_committed_mb %.0f, gen2_mb %.0f", c / 1048576, g / 1048576}' "$out/$label-counters.csv")
  fi
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$data"
  echo "$label: start to /health ${up%???????} s, rss_mb $rss$gc" | tee -a "$out/results.txt"
}

for i in $(seq 1 "$runs"); do
  measure "this-$i" src/Tessera.Cli/bin/Release/net10.0/tessera.dll
  if [ -n "${BASELINE:-}" ]; then measure "baseline-$i" "$BASELINE/src/Tessera.Cli/bin/Release/net10.0/tessera.dll"; fi
done
