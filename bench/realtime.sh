#!/usr/bin/env bash
# Real-time figures of issues 5 and 6 on the embedded store, RUNS times each (default 3), then medians:
#   (a) audience membership: an event that makes a profile enter an audience, visible in the API and its entry in
#       the change log (Tessera.LoadGen --probe-audience), while 10,000 events/s are ingested (open loop);
#   (b) event -> webhook request for that entry (Tessera.LoadGen --probe-webhook), same load.
# With BASELINE=/path/to/another/checkout (built: src/Tessera.Cli), each run also runs that build, interleaved, so
# the two are compared under the same load. Results: bench/results/realtime-<UTC time>/.
# Usage: [BASELINE=dir] bench/realtime.sh [runs]; env: RATE (10000), DURATION (20), WARMUP (15), SKIP_BUILD=1 (use the build as it is),
#   STORE_FROM=FILE.duckdb (each server starts on a copy of that store, e.g. the million profiles and ten million events
#   that Tessera.AudienceBench fills: issue 5 asks for its figures at that size).
# The warm-up is 15 s because a fresh process spends its first ~10 s at this rate with its code not yet optimised
# by the JIT and every user new to the engine: the engine then takes 60-90 us an event, falls behind, and its
# chunks grow to thousands of events, which put seconds into the probes of a 5 s warm-up (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
runs=${1:-3}
out="bench/results/realtime-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
[ -n "${SKIP_BUILD:-}" ] || dotnet build Tessera.slnx -c Release -nologo -v q > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
loadgen=bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll
source bench/machine.sh
machine_txt "$out" "${BASELINE:+baseline $(git -C "$BASELINE" rev-parse --short HEAD)}${STORE_FROM:+ store from $STORE_FROM ($(du -h "$STORE_FROM" | cut -f1))}"

run() {  # label, dll, loadgen args...
  local name=$1 dll=$2; shift 2
  echo "-- $name (load average $(cut -d' ' -f1 /proc/loadavg))"
  dotnet "$loadgen" --label "$name" --dll "$dll" "$@" | tee -a "$out/$name.txt" | grep -v '^RESULT' | tail -4 || echo "(the load generator failed; see $out/$name.txt)"
  grep '^RESULT' "$out/$name.txt" | tail -1 | cut -c8- >> "$out/results.jsonl" || true
}

# The audience probes one by one (their 200, visible, recorded, polls), to see where a slow one spent its time.
probe_log() {  # probe, label, run
  [ "$1" = audience ] && echo --probe-log "$out/$2-probes-$3.tsv" || true
}

load=(--spawn tessera --rate "${RATE:-10000}" --connections 32 --duration "${DURATION:-20}" --warmup "${WARMUP:-15}" ${STORE_FROM:+--store-from "$STORE_FROM"})
for i in $(seq 1 "$runs"); do
  echo "== run $i of $runs"
  for probe in audience webhook; do
    run "$probe" src/Tessera.Cli/bin/Release/net10.0/tessera.dll "${load[@]}" "--probe-$probe" $(probe_log "$probe" "$probe" "$i")
    if [ -n "${BASELINE:-}" ]; then run "$probe-baseline" "$BASELINE/src/Tessera.Cli/bin/Release/net10.0/tessera.dll" "${load[@]}" "--probe-$probe" $(probe_log "$probe" "$probe-baseline" "$i"); fi
  done
done

python3 - "$out/results.jsonl" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = ["events_per_s", "p99_ms", "zero_loss", "probe_count", "probe_visible_p50_ms", "probe_visible_p99_ms", "probe_recorded_p50_ms", "probe_recorded_p99_ms", "webhook_probe_count", "webhook_probe_missing",
        "webhook_p50_ms", "webhook_p99_ms", "webhook_after_200_p99_ms", "rss_max_mb", "load_average"]
for label in sorted({r["label"] for r in rows}):
    for k in keys:
        v = [r[k] for r in rows if r["label"] == label and r.get(k) is not None]
        v = [float(x) for x in v if not isinstance(x, bool) and float(x) == float(x)] if all(not isinstance(x, bool) for x in v) else v  # NaN: a probe that saw nothing; load_average comes as text
        if v: print(f"{label:18} {k:26} median {statistics.median(v):>10.1f}  runs {v}")
PY

# Every audience probe of all runs together: a run's p99 of ~170 probes is about its second-slowest probe, so the
# pooled p99 is the steadier figure.
python3 - "$out" <<'PY'
import glob, os, sys
out = sys.argv[1]
for label in sorted({os.path.basename(f).rsplit("-probes-", 1)[0] for f in glob.glob(f"{out}/*-probes-*.tsv")}):
    rows = [l.rstrip("\n").split("\t") for f in sorted(glob.glob(f"{out}/{label}-probes-*.tsv")) for l in open(f).readlines()[1:]]
    if not rows: continue
    def p(column, q):
        values = sorted(float(r[column]) for r in rows if r[column] not in ("", "NaN"))
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")
    print(f"{label:18} all {len(rows)} probes pooled: 200 p99 {p(1, .99):.1f}, visible p50 {p(2, .5):.1f} p99 {p(2, .99):.1f}, recorded p50 {p(3, .5):.1f} p99 {p(3, .99):.1f} ms")
PY
