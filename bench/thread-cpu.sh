#!/usr/bin/env bash
# Where the server's CPU goes under load, thread by thread: runs the load generator against a spawned server (flat out,
# or RATE events/s) and reads every thread's CPU time from /proc over a window of the measured part of the run
# (from 15 s after the start, after the load generator's 10 s warm-up and the JIT's busiest seconds, for WINDOW s,
# default 12). Threads are summed by name, as the kernel keeps it (15 characters): "Tessera DuckDB " is the store's
# committer, "dotnet" mostly DuckDB's own worker threads (checkpoint tasks), ".NET TP Worker" the HTTP requests and
# their validation, "Tessera journal" the indexer, ".NET Server GC" / ".NET BGC" the collector. Also the machine's
# idle share (vmstat) over the same window: a serial stage shows as a thread near 1.0 core with idle left over.
# Usage: [RATE=25000] [WINDOW=12] bench/thread-cpu.sh [runs]. Results: bench/results/thread-cpu-<UTC>/.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-2}
window=${WINDOW:-12}
out="bench/results/thread-cpu-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
source bench/machine.sh
machine_txt "$out" "$(rate_label), window ${window} s"
dll=$PWD/src/Tessera.Cli/bin/Release/net10.0/tessera.dll

# Every thread of PID as "tid ticks name" (utime + stime, in clock ticks).
snapshot() {
  for t in /proc/"$1"/task/*; do
    local name stat
    name=$(cat "$t/comm" 2> /dev/null) || continue
    stat=$(sed 's/.*) //' "$t/stat" 2> /dev/null) || continue
    echo "$(basename "$t") $(echo "$stat" | awk '{print $12 + $13}') $name"
  done
}

for i in $(seq 1 "$runs"); do
  dotnet bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll --label "threads-$i" --dll "$dll" --spawn tessera --connections 64 \
    ${RATE:+--rate "$RATE"} --duration $((window + 10)) --warmup 10 > "$out/load-$i.txt" 2>&1 &
  loadgen=$!
  pid=$(spawned_server_pid "$dll" "$out/load-$i.txt")
  sleep 15
  snapshot "$pid" > "$out/threads-$i-start.txt"
  vmstat 1 "$window" > "$out/vmstat-$i.txt" &
  sleep "$window"
  snapshot "$pid" > "$out/threads-$i-end.txt"
  wait "$loadgen" || true
  grep -E "accepted|server:" "$out/load-$i.txt" | sed "s/^/run $i: /"
  python3 - "$out/threads-$i-start.txt" "$out/threads-$i-end.txt" "$window" "$(getconf CLK_TCK)" "$out/vmstat-$i.txt" <<'PY' | tee -a "$out/results.txt"
import collections, statistics, sys
start, end, window, tck = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
def read(path):
    rows = {}
    for line in open(path):
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) == 3: rows[parts[0]] = (int(parts[1]), parts[2])
    return rows
a, b = read(start), read(end)
by = collections.Counter()
for tid, (ticks, name) in b.items():
    by[name] += ticks - a.get(tid, (0, name))[0]
cores = {name: ticks / tck / window for name, ticks in by.items()}
idle = [int(l.split()[14]) for l in open(sys.argv[5]).readlines()[2:] if l.split() and l.split()[0].isdigit()]
print(f"server {sum(cores.values()):.2f} cores; machine idle {statistics.median(idle) if idle else float('nan'):.0f} % (median of vmstat's seconds)")
for name, c in sorted(cores.items(), key=lambda x: -x[1])[:10]:
    print(f"  {c:5.2f}  {name}")
PY
done
