#!/usr/bin/env bash
# File and Segment destinations (issue 6), RUNS times each (default 3), on fresh DuckDB stores, then medians:
#   (a) a file destination's run over a 100,000-profile audience, as CSV and as Parquet (Tessera.LoadGen --file-export);
#   (b) events forwarded per second by a Segment destination (Tessera.LoadGen --segment-forward).
# Results: bench/results/destinations-<UTC time>/ (results.jsonl, machine.txt). Usage: bench/destinations.sh [runs]
# env: PROFILES (default 100000), EVENTS (default 100000), BATCH_SIZE (default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
runs=${1:-3}
out="bench/results/destinations-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
dotnet build Tessera.slnx -c Release -nologo -v q > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
loadgen=bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), nproc $(nproc)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GB"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt"

run() {  # name, loadgen args...
  local name=$1; shift
  echo "-- $name (load average $(cut -d' ' -f1 /proc/loadavg))"
  dotnet "$loadgen" --label "$name" "$@" | tee -a "$out/$name.txt" | grep -v '^RESULT' || true
  grep '^RESULT' "$out/$name.txt" | tail -1 | cut -c8- >> "$out/results.jsonl"
}

for i in $(seq 1 "$runs"); do
  echo "== run $i of $runs"
  run file-export --spawn tessera --file-export "${PROFILES:-100000}"
  run segment-forward --spawn tessera --segment-forward "${EVENTS:-100000}" --batch-size "${BATCH_SIZE:-1000}"
done

python3 - "$out/results.jsonl" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(label, key):
    v = [r[key] for r in rows if r["label"] == label and r.get(key) is not None]
    return (statistics.median(v), v) if v else (None, v)
for label, keys in (("file-export", ["csv_run_ms", "csv_wall_s", "csv_bytes", "parquet_run_ms", "parquet_wall_s", "parquet_bytes", "load_average"]),
                    ("segment-forward", ["acknowledged_s", "forwarded_s", "forwarded_per_s", "requests", "load_average"])):
    for k in keys:
        m, v = med(label, k)
        print(f"{label:16} {k:18} median {m}  runs {v}")
PY
