#!/usr/bin/env bash
# Issue 6's activation figures, RUNS times each (default 3), on fresh DuckDB stores, then medians:
#   (a) webhook-latency: event → webhook request for an audience entry, while 10,000 events/s (open loop) are
#       ingested (Tessera.LoadGen --probe-webhook: a receiver in the load generator, 20 probes/s on the same clock);
#   (b) audience-delivery: an audience of 100,000 profiles delivered to a batching webhook (--audience-delivery);
#   (c) file-export: a file destination's run over a 100,000-profile audience, as CSV and as Parquet (--file-export);
#   (d) segment-forward: events forwarded per second by a Segment destination (--segment-forward).
# Results: bench/results/activation-<UTC time>/ (results.jsonl, machine.txt). Usage: bench/activation.sh [runs]
# env: PARTS (default "webhook-latency audience-delivery file-export segment-forward"), RATE (default 10000),
# DURATION (default 20), WARMUP (default 5), PROFILES (default 100000), EVENTS (default 100000), BATCH_SIZE (default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
runs=${1:-3}
out="bench/results/activation-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
dotnet build Tessera.slnx -c Release -nologo -v q > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
loadgen=bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll
source bench/machine.sh
machine_txt "$out"

run() {  # name, loadgen args...
  local name=$1; shift
  echo "-- $name (load average $(cut -d' ' -f1 /proc/loadavg))"
  dotnet "$loadgen" --label "$name" "$@" | tee -a "$out/$name.txt" | grep -v '^RESULT' || true
  grep '^RESULT' "$out/$name.txt" | tail -1 | cut -c8- >> "$out/results.jsonl"
}

parts=" ${PARTS:-webhook-latency audience-delivery file-export segment-forward} "
for i in $(seq 1 "$runs"); do
  echo "== run $i of $runs"
  [[ $parts == *" webhook-latency "* ]] && run webhook-latency --spawn tessera --rate "${RATE:-10000}" --connections 32 --duration "${DURATION:-20}" --warmup "${WARMUP:-5}" --probe-webhook
  [[ $parts == *" audience-delivery "* ]] && run audience-delivery --spawn tessera --audience-delivery "${PROFILES:-100000}" --batch-size "${BATCH_SIZE:-1000}"
  [[ $parts == *" file-export "* ]] && run file-export --spawn tessera --file-export "${PROFILES:-100000}"
  [[ $parts == *" segment-forward "* ]] && run segment-forward --spawn tessera --segment-forward "${EVENTS:-100000}" --batch-size "${BATCH_SIZE:-1000}"
done

python3 - "$out/results.jsonl" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(label, key):
    v = [r[key] for r in rows if r["label"] == label and r.get(key) is not None]
    return (statistics.median(v), v) if v else (None, v)
for label, keys in (("webhook-latency", ["events_per_s", "p99_ms", "webhook_p50_ms", "webhook_p99_ms", "webhook_after_200_p50_ms", "webhook_after_200_p99_ms", "webhook_probe_missing", "load_average"]),
                    ("audience-delivery", ["entries_committed_s", "delivered_s", "requests", "load_average"]),
                    ("file-export", ["csv_run_ms", "csv_wall_s", "csv_bytes", "parquet_run_ms", "parquet_wall_s", "parquet_bytes", "load_average"]),
                    ("segment-forward", ["acknowledged_s", "forwarded_s", "forwarded_per_s", "requests", "load_average"])):
    for k in keys:
        m, v = med(label, k)
        if not v: continue
        print(f"{label:18} {k:26} median {m}  runs {v}")
PY
