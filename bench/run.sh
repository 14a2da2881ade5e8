#!/usr/bin/env bash
# Builds Release and runs Tessera's whole benchmark set RUNS times (default 3), then prints medians:
#   1. ceiling: Kestrel that parses each /v1/batch with JsonDocument and discards it, flat out;
#   2. Tessera flat out (closed loop) on a fresh DuckDB store, with the zero-loss check; then the same with the journal
#      off (--no-journal: answers after the store's commit), the baseline, in the same round;
#   3. Tessera at 25,000 events/s (open loop) for latency, journal on and off, and the ceiling at the same rate (the
#      machine's own latency floor);
#   4. Tessera flat out on PostgreSQL (issue 3: `serve --store postgres`, a fresh schema per run on the test cluster,
#      which scripts/deps/postgres.sh installs and starts when missing, as test.sh does);
#   5. BenchmarkDotNet: raw DuckDB append, validation, JSON/gzip parse, and PostgresStore.AppendAsync against a bare
#      binary COPY of the same rows (the PostgreSQL ceiling).
# Every load run starts its own server on 127.0.0.1 and stops it. Results: bench/results/<UTC time>/.
# Usage: bench/run.sh [runs]   env: DURATION (s, default 20), WARMUP (s, default 10), CONNECTIONS (flat out, default 64),
#        RATE (events/s, default 25000), RATE_CONNECTIONS (default 64), SKIP_BDN=1 to skip BenchmarkDotNet,
#        SKIP_CEILING=1 to skip the ceiling runs, SKIP_POSTGRES=1 to skip PostgreSQL (the load runs and its benchmarks),
#        SKIP_DUCKDB=1 to run only PostgreSQL's.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
runs=${1:-3}
duration=${DURATION:-20}
warmup=${WARMUP:-10}
connections=${CONNECTIONS:-64}
rate=${RATE:-25000}
rate_connections=${RATE_CONNECTIONS:-64}
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

echo "== build (Release)"
dotnet build Tessera.slnx -c Release -nologo -v q > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
loadgen=bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll

source bench/machine.sh
machine_txt "$out"

bdn_filter=('*')
if [ -z "${SKIP_POSTGRES:-}" ]; then
  source scripts/deps/postgres.sh >/dev/null  # exports TESSERA_TEST_POSTGRES and TESSERA_TEST_PG_BIN
  pg_port=$(sed -E 's/.*Port=([0-9]+).*/\1/' <<<"$TESSERA_TEST_POSTGRES")
  pg_drop_schema() { PGOPTIONS="-c client_min_messages=warning" "$TESSERA_TEST_PG_BIN/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -c "DROP SCHEMA IF EXISTS $1 CASCADE" >/dev/null; }
else
  bdn_filter=('*.AppendBenchmarks.*' '*.CollectionBenchmarks.*')
fi
[ -z "${SKIP_DUCKDB:-}" ] || bdn_filter=('*.PostgresAppendBenchmarks.*')

load() {  # name, loadgen args...
  local name=$1; shift
  echo "-- $name (load average $(cut -d' ' -f1 /proc/loadavg))"
  # The writer's debug log gives each group commit's size and time (summarised below); one line per commit.
  env 'Logging__LogLevel__Tessera.Server.Collection.EventWriter=Debug' 'Logging__LogLevel__Tessera.Server.Collection.JournalIndexer=Debug' dotnet "$loadgen" --label "$name" --duration "$duration" --warmup "$warmup" "$@" | tee -a "$out/$name.txt" | grep -v '^RESULT' || true
  grep '^RESULT' "$out/$name.txt" | tail -1 | cut -c8- >> "$out/results.jsonl"
}

for i in $(seq 1 "$runs"); do
  echo "== run $i of $runs"
  [ -n "${SKIP_CEILING:-}" ] || load ceiling --spawn ceiling --connections "$connections"
  if [ -z "${SKIP_DUCKDB:-}" ]; then
    load tessera-flat --spawn tessera --connections "$connections" --server-log "$out/tessera-flat-$i.log"
    load nojournal-flat --spawn tessera --serve-arg --no-journal --connections "$connections" --server-log "$out/nojournal-flat-$i.log"
    load tessera-25k --spawn tessera --rate "$rate" --connections "$rate_connections" --server-log "$out/tessera-25k-$i.log"
    load nojournal-25k --spawn tessera --serve-arg --no-journal --rate "$rate" --connections "$rate_connections" --server-log "$out/nojournal-25k-$i.log"
  fi
  [ -n "${SKIP_CEILING:-}" ] || load ceiling-25k --spawn ceiling --rate "$rate" --connections "$rate_connections"
  if [ -z "${SKIP_POSTGRES:-}" ]; then
    schema="bench_pg_$(date -u +%H%M%S)_$i"
    load pg-flat --spawn tessera --connections "$connections" --server-log "$out/pg-flat-$i.log" \
      --serve-arg --store --serve-arg postgres --serve-arg --postgres --serve-arg "$TESSERA_TEST_POSTGRES;Search Path=$schema"
    pg_drop_schema "$schema"
  fi
  if [ -z "${SKIP_BDN:-}" ]; then
    echo "-- BenchmarkDotNet"
    (cd "$out" && mkdir -p "bdn-$i" && cd "bdn-$i" && dotnet "../../../Tessera.Benchmarks/bin/Release/net10.0/Tessera.Benchmarks.dll" --filter "${bdn_filter[@]}" > bdn.log 2>&1) \
      || echo "BenchmarkDotNet failed: see $out/bdn-$i/bdn.log"
  fi
done

echo "== medians over $runs runs (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
python3 - "$out" <<'PY'
import glob, json, statistics as st, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl") if l.strip()]
for r in rows:  # server CPU time per accepted event, the figure least moved by other load on the machine
    r["server_us_per_event"] = round(r["server_cpu_cores"] / r["events_per_s"] * 1e6, 1) if r.get("server_cpu_cores") and r["events_per_s"] else None
keys = ["events_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms", "rss_max_mb", "server_cpu_cores", "server_us_per_event", "loadgen_cpu_cores", "non_200", "errors", "catch_up_s", "stored_events_per_s"]
print(f"{'run':14} {'n':>2} " + " ".join(f"{k:>19}" for k in keys) + "  zero_loss  stored_all_sent")  # catch_up_s / stored_events_per_s: the store behind the journal
summary = {}
for label in dict.fromkeys(r["label"] for r in rows):
    rs = [r for r in rows if r["label"] == label]
    med = {k: st.median([r[k] for r in rs if r.get(k) is not None]) if any(r.get(k) is not None for r in rs) else None for k in keys}
    loss = [r["zero_loss"] for r in rs]
    all_sent = [r.get("stored_all_sent") for r in rs]  # with the load generator's retries (since 2026-12-07): stored = sent
    summary[label] = dict(med, runs=len(rs), zero_loss=loss, stored_all_sent=all_sent, retried_requests=[r.get("retried_requests") for r in rs], each_events_per_s=[r["events_per_s"] for r in rs], each_p99_ms=[r["p99_ms"] for r in rs])
    print(f"{label:14} {len(rs):>2} " + " ".join(f"{'-' if med[k] is None else med[k]:>19}" for k in keys) + f"  {loss}  {all_sent}")
bdn = {}
for f in glob.glob(f"{out}/bdn-*/BenchmarkDotNet.Artifacts/results/*-report-brief.json"):
    for b in json.load(open(f))["Benchmarks"]:
        bdn.setdefault(b["MethodTitle"].strip("'"), []).append(b["Statistics"]["Median"])
if bdn:
    print("\nBenchmarkDotNet (median of each run's median):")
    for name, values in bdn.items():
        m = st.median(values)
        rate = f"  = {1e9 / m:,.0f} per second" if "per row" in name or "per message" in name else ""
        print(f"  {name:58} {m:12,.1f} ns{rate}   (runs: {', '.join(f'{v:,.0f}' for v in values)})")
    summary["benchmarks_ns"] = {k: st.median(v) for k, v in bdn.items()}
import re
commits = {}
for f in sorted(glob.glob(f"{out}/tessera-*-*.log") + glob.glob(f"{out}/nojournal-*-*.log") + glob.glob(f"{out}/pg-*-*.log")):
    label = f.rsplit("/", 1)[1].rsplit("-", 1)[0]
    text = open(f).read()
    # Store commits: the group commit's with the journal off, the indexer's with it on. Journal appends separately.
    for m in re.finditer(r"Group commit of (\d+) events from (\d+) requests took ([\d.]+) ms", text):
        commits.setdefault(label + " store", []).append((int(m[1]), float(m[3])))
    for m in re.finditer(r"Indexed (\d+) events in ([\d.]+) ms", text):
        commits.setdefault(label + " store", []).append((int(m[1]), float(m[2])))
    for m in re.finditer(r"Journaled (\d+) events from (\d+) requests in ([\d.]+) ms", text):
        commits.setdefault(label + " journal", []).append((int(m[1]), float(m[3])))
if commits:
    print("\nCommits (all runs): count, median rows, median / p99 / max ms, share over 500 ms")
    for label, cs in commits.items():
        rows_, ms = sorted(c[0] for c in cs), sorted(c[1] for c in cs)
        print(f"  {label:22} {len(cs):6} {st.median(rows_):8.0f} rows {st.median(ms):8.1f} / {ms[int(0.99 * (len(ms) - 1))]:8.1f} / {ms[-1]:8.1f} ms  {sum(m > 500 for m in ms) / len(ms):.1%}")
    summary["commits"] = {k: dict(count=len(v), median_rows=st.median(c[0] for c in v), median_ms=st.median(c[1] for c in v), max_ms=max(c[1] for c in v)) for k, v in commits.items()}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print(f"\nall results: {out}")
PY
