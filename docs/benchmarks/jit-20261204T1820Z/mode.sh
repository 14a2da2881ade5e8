#!/usr/bin/env bash
# usage: [RATE=25000] mode.sh OUT ROUNDS "label|ENV=..|dll" ...
out=$1; rounds=$2; shift 2; mkdir -p $out
def=/tmp/wt-trace/src/Tessera.Cli/bin/Release/net10.0/tessera.dll
for r in $(seq 1 $rounds); do
 for v in "$@"; do
  IFS="|" read -r label envs dll extra <<< "$v"; dll=${dll:-$def}
  log=$out/$label-$r.txt; : > $out/$label-$r.rss
  env $envs dotnet /work/main/bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll --label $label --dll "$dll" --spawn tessera --connections 64 ${RATE:+--rate $RATE} --duration ${DUR:-20} --warmup ${WARM:-10} --server-log $out/$label-$r.log $extra > $log 2>&1 &
  lg=$!; pid=""
  for _ in $(seq 1 100); do pid=$(pgrep -f "$dll serve" | head -1); [ -n "$pid" ] && break; sleep 0.1; done
  while kill -0 $pid 2>/dev/null; do awk '/^Rss:/ {print $2}' /proc/$pid/smaps_rollup >> $out/$label-$r.rss 2>/dev/null; sleep 1; done
  wait $lg
  python3 - $log $out/$label-$r.rss $label $r $out/$label-$r.log <<'PY' | tee -a $out/summary.txt
import sys, json, statistics, re
res = [json.loads(l[7:]) for l in open(sys.argv[1]) if l.startswith("RESULT ")]
rss = [int(x)/1024 for x in open(sys.argv[2]).read().split() if x.strip()]
rss = rss[12:] if len(rss) > 15 else rss
secs = [l for l in open(sys.argv[5]) if "TRACE sec" in l]
fast = next((i for i, l in enumerate(secs) if int(re.search(r"commits (\d+)", l).group(1)) >= 20), None)
pause = re.search(r"pause (\d+)", secs[-1]).group(1) if secs else "?"
if not res: print(sys.argv[3], sys.argv[4], "NO RESULT"); sys.exit()
j = res[-1]
print(f"{sys.argv[3]:>12} r{sys.argv[4]} acc {j['events_per_s']:>7,} stored {j['stored_events_per_s']:>7,} p99 {j['p99_ms']:>7} rss med {statistics.median(rss):6.0f} max {max(rss):6.0f} cpu {j['server_cpu_cores']} fast_at {fast} pause_ms {pause} load {j['load_average']}")
PY
 done
done
