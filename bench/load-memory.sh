#!/usr/bin/env bash
# Where the server's resident memory goes under load: runs the load generator against a spawned server (flat out, or
# RATE events/s), with dotnet-counters (dotnet tool install -g dotnet-counters) collecting the runtime's GC counters
# and the store's meter (Tessera.Storage: events waiting for the committer, dedup entries, the dedup index's native bytes and its run files' bytes, DuckDB's buffers by tag and its allocator's allocated and resident bytes)
# every second, and /proc's resident set beside them. Prints, at the second of the highest resident set and as
# medians over the run: RSS, the GC's committed memory, DuckDB's buffers, the dedup table (native), and the rest (runtime, native allocations
# DuckDB makes outside its buffer manager, thread stacks). RUNS times (default 2). Results: bench/results/load-memory-<UTC>/.
# DLL names another build's tessera.dll (default: this checkout's Release build).
# Usage: [RATE=25000] [DURATION=20] [WARMUP=10] [DLL=path] bench/load-memory.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-2}
out="bench/results/load-memory-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
source bench/machine.sh
machine_txt "$out" "$(rate_label)${DLL:+, dll $DLL}"
counters=~/.dotnet/tools/dotnet-counters
[ -x "$counters" ] || { echo "needs dotnet-counters: dotnet tool install -g dotnet-counters"; exit 1; }
dll=${DLL:-$PWD/src/Tessera.Cli/bin/Release/net10.0/tessera.dll}

for i in $(seq 1 "$runs"); do
  dotnet bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll --label "memory-$i" --dll "$dll" --spawn tessera --connections 64 \
    ${RATE:+--rate "$RATE"} --duration "${DURATION:-20}" --warmup "${WARMUP:-10}" > "$out/load-$i.txt" 2>&1 &
  loadgen=$!
  pid=$(spawned_server_pid "$dll" "$out/load-$i.txt")
  "$counters" collect -p "$pid" --refresh-interval 1 --format csv -o "$out/counters-$i.csv" --counters System.Runtime,Tessera.Storage > /dev/null 2>&1 &
  sample_rss "$pid" "$out/rss-$i.txt"
  wait "$loadgen" || true
  grep -E "accepted|server:" "$out/load-$i.txt" | sed "s/^/run $i: /"
  python3 - "$out/counters-$i.csv" "$out/rss-$i.txt" <<'PY' | tee -a "$out/results.txt"
import csv, datetime, statistics, sys
rows = {}
for r in csv.reader(open(sys.argv[1])):
    if len(r) < 5 or r[0] == "Timestamp": continue
    t = int(datetime.datetime.strptime(r[0], "%m/%d/%Y %H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp())
    s = rows.setdefault(t, {})
    name = r[2]
    v = float(r[4])
    if name.startswith("tessera.store.duckdb.memory"): s["duckdb"] = s.get("duckdb", 0) + v
    elif "memory.committed_size" in name: s["gc_committed"] = v
    elif name.startswith("tessera.store.staged.events"): s["staged"] = v
    elif name.startswith("tessera.store.dedup.entries"): s["dedup"] = v
    elif name.startswith("tessera.store.dedup.bytes"): s["dedup_bytes"] = v
    elif name.startswith("tessera.store.dedup.file.bytes"): s["dedup_file"] = v
    elif name.startswith("tessera.store.duckdb.allocator") and "kind=resident" in name: s["je_resident"] = v
    elif name.startswith("tessera.store.duckdb.allocator") and "kind=allocated" in name: s["je_allocated"] = v
    elif name.startswith("tessera.store.duckdb.allocator"):
        for kind in ("active", "metadata", "dirty", "muzzy"):
            if f"kind={kind}" in name: s["je_" + kind] = v
    elif "last_collection.heap.size" in name: s["gc_heap"] = s.get("gc_heap", 0) + v
    elif name.startswith("tessera.store.commit.duration") and "checkpointed=False;Percentile=50" in name: s["commit_p50"] = v
rss = {}
for line in open(sys.argv[2]):
    t, kb = line.split(); rss[int(t)] = int(kb) * 1024
# Both sampled about every second (dotnet-counters stamps its samples in the machine's time zone: UTC here); a second
# /proc was not read in takes the one before it.
for t in sorted(rss):
    rss.setdefault(t + 1, rss[t])
seconds = [t for t in sorted(rows) if t in rss and "gc_committed" in rows[t] and "duckdb" in rows[t]]
def mb(v): return f"{v / 1048576:,.0f}"
def row(t):
    s = rows[t]; r = rss[t]; d = s.get("duckdb", 0); g = s["gc_committed"]; x = s.get("dedup_bytes", 0)
    return r, g, s.get("gc_heap", 0), d, r - g - d - x, s.get("staged", 0), s.get("dedup", 0), x
if not seconds:
    print("no overlapping samples"); sys.exit()
peak = max(seconds, key=lambda t: rss[t])
r, g, h, d, o, st, de, x = row(peak)
print(f"at the highest RSS: rss {mb(r)} MB = gc committed {mb(g)} (heap after last gc {mb(h)}) + duckdb buffers {mb(d)} + dedup table {mb(x)} + rest {mb(o)}; staged events {st:,.0f}, dedup entries {de:,.0f} (run files {mb(rows[peak].get('dedup_file', 0))} MB, not resident)")
# DuckDB's allocator (jemalloc) counts its buffers and the rest of what DuckDB holds: the split by it.
if "je_resident" in rows[peak]:
    jr = rows[peak]["je_resident"]
    print(f"  by DuckDB's allocator: duckdb allocator resident {mb(jr)} MB (allocated {mb(rows[peak].get('je_allocated', 0))}, of it buffers {mb(d)}); rss - gc - duckdb allocator - dedup = {mb(r - g - jr - x)} MB (runtime, libraries, stacks, other native)")
    if "je_active" in rows[peak]:
        p = rows[peak]
        print(f"  DuckDB's allocator resident {mb(jr)} MB: active {mb(p['je_active'])} (allocated {mb(p.get('je_allocated', 0))}), metadata {mb(p.get('je_metadata', 0))}, dirty {mb(p.get('je_dirty', 0))}, muzzy {mb(p.get('je_muzzy', 0))}")
med = [statistics.median(x) for x in zip(*[row(t) for t in seconds])]
# Whether the store kept up: a store that keeps up commits a few hundred events every few tens of milliseconds; one
# that fell behind commits the backlog in transactions of ~20,000 that take a second (docs/benchmarks.md, "A slow
# start that stays slow, and the quick JIT"). The last second whose median commit (checkpoints apart) took over 200 ms:
slow = [t for t in sorted(rows) if rows[t].get("commit_p50", 0) > 200]
first = min(rows)
print("events waiting for the committer each second (thousands): " + " ".join(f"{rows[t].get('staged', 0) / 1000:.0f}" for t in sorted(rows)))
print(f"store behind (median commit over 200 ms) until second {max(slow) - first if slow else 0} of {max(rows) - first}")
print(f"medians over {len(seconds)} s: rss {mb(med[0])} MB, gc committed {mb(med[1])}, heap {mb(med[2])}, duckdb buffers {mb(med[3])}, dedup table {mb(med[7])}, rest {mb(med[4])}; staged events {med[5]:,.0f}")
PY
done
