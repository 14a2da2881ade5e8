#!/usr/bin/env bash
# Interleaved A/B runs of the load generator against spawned servers, for comparisons on this shared, noisy machine:
# each round runs every variant once, so a busy minute hits all of them, in the order given in odd rounds and reversed
# in even ones. A variant is
# "label|ENV=value ENV2=value|server dll|extra load generator arguments" (empty fields take the defaults: no extra
# environment, the Release build's tessera.dll, nothing extra), e.g. "quickjit|DOTNET_TC_QuickJit=1" or
# "ck16|||--serve-arg --duckdb-checkpoint-mb=16". One line a run: accepted and stored events/s, the 200s' p99, the
# server's resident set (median and highest, sampled every second from /proc after the first 12 s) and CPU.
# RATE events/s (default flat out), DURATION s (default 20) after WARMUP s (default 10).
# Results: bench/results/ab-<UTC time>/ (every run's output, its RSS samples, summary.txt).
# Usage: [RATE=25000] bench/ab.sh ROUNDS VARIANT...
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:?usage: bench/ab.sh ROUNDS VARIANT...}
shift
[ $# -gt 0 ] || { echo "usage: bench/ab.sh ROUNDS VARIANT..."; exit 1; }
out="bench/results/ab-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
source bench/machine.sh
machine_txt "$out" "$(rate_label), $rounds rounds: $*"
default_dll=$PWD/src/Tessera.Cli/bin/Release/net10.0/tessera.dll
loadgen=bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll

variants=("$@")
reversed=()
for ((k = ${#variants[@]} - 1; k >= 0; k--)); do reversed+=("${variants[k]}"); done
for r in $(seq 1 "$rounds"); do
  # Odd rounds in the order given, even rounds reversed (A B, B A, ...): on 2026-12-07 the second of a pair won every
  # round of two sets, whichever build it was, so a fixed order measures the order too.
  order=("${variants[@]}")
  (( r % 2 == 0 )) && order=("${reversed[@]}")
  for variant in "${order[@]}"; do
    IFS="|" read -r label envs dll extra <<< "$variant"
    dll=${dll:-$default_dll}
    log="$out/$label-$r.txt"
    rss="$out/$label-$r.rss"
    : > "$rss"
    # shellcheck disable=SC2086 # the environment and the extra arguments are word lists
    env $envs dotnet "$loadgen" --label "$label" --dll "$dll" --spawn tessera --connections 64 ${RATE:+--rate "$RATE"} \
      --duration "${DURATION:-20}" --warmup "${WARMUP:-10}" $extra > "$log" 2>&1 &
    run=$!
    pid=$(spawned_server_pid "$dll" "$log")
    sample_rss "$pid" "$rss"
    wait "$run" || true
    python3 - "$log" "$rss" "$label" "$r" <<'PY' | tee -a "$out/summary.txt"
import json, statistics, sys
log, rss_file, label, r = sys.argv[1:5]
results = [json.loads(line[7:]) for line in open(log) if line.startswith("RESULT ")]
rss = [int(line.split()[1]) / 1024 for line in open(rss_file) if line.strip()]
rss = rss[12:] if len(rss) > 15 else rss  # the warm-up's first seconds apart
if not results or not rss:
    print(f"{label:>12} r{r} no result (see {log})")
    sys.exit()
j = results[-1]
print(f"{label:>12} r{r} accepted {j['events_per_s']:>7,} stored {j['stored_events_per_s']:>7,} p99 {j['p99_ms']:>8} ms"
      f" rss median {statistics.median(rss):6.0f} highest {max(rss):6.0f} MB cpu {j['server_cpu_cores']}"
      f" zero_loss {j['zero_loss']} all_sent_stored {j.get('stored_all_sent')} retried {j.get('retried_requests')} load {j['load_average']}")
PY
  done
done
echo "summary: $out/summary.txt"
