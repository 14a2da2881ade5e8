#!/usr/bin/env bash
# Where the slow 200s come from, on one timeline: a run at RATE events/s (default 10,000) with the load generator's
# per-request latency log, `strace -T` of the journal's group-commit fsyncs, DuckDB's write-ahead log size sampled
# every 20 ms (a drop to 0 is a checkpoint's end) and the GC's pauses (dotnet-counters, when installed). Prints the
# fsync and 200 percentiles, then every slow moment in time order. Needs strace (Debian: strace).
# Usage: bench/journal-timeline.sh [out-dir]; env: RATE (10000), DURATION (20), WARMUP (15), DLL (the server build),
# TRACE (fsync) the group commit's syscalls strace records (e.g. fsync,pwrite64), TRICKLE=ms also runs an outside pacer on the store file (sync_file_range every ms), as measured before the pacer was built.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/timeline-$(date -u +%Y%m%dT%H%M%SZ)}; mkdir -p "$out"
command -v strace >/dev/null || { echo "needs strace (apt-get install strace)"; exit 1; }
dll=${DLL:-src/Tessera.Cli/bin/Release/net10.0/tessera.dll}
loadgen=bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll
warmup=${WARMUP:-15}; duration=${DURATION:-20}
dotnet "$loadgen" --label timeline --dll "$dll" --spawn tessera --rate "${RATE:-10000}" --connections 32 --duration "$duration" --warmup "$warmup" --latency-log "$out/latency.txt" > "$out/loadgen.txt" 2>&1 &
loadgen_pid=$!
sleep $((warmup - 1))
pid=$(pgrep -f "$(basename "$dll") serve" | head -1)
data=$(ls -dt /tmp/tessera-bench-* | head -1)
group=$(grep -l "Tessera group" /proc/"$pid"/task/*/comm | head -1 | cut -d/ -f5)
span=$((duration + 2))
timeout "$span" strace -T -tt -e trace="${TRACE:-fsync}" -p "$group" -o "$out/fsync.txt" 2>/dev/null &
counters=~/.dotnet/tools/dotnet-counters
[ -x "$counters" ] && timeout "$span" "$counters" collect -p "$pid" --refresh-interval 1 --format csv -o "$out/counters.csv" --counters System.Runtime > /dev/null 2>&1 &
python3 - "$data" "$span" "${TRICKLE:-0}" > "$out/wal.txt" <<'PY' &
import ctypes, datetime, os, sys, time
data, span, trickle = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
libc = ctypes.CDLL("libc.so.6", use_errno=True)
db = os.open(os.path.join(data, next(f for f in os.listdir(data) if f.endswith(".duckdb"))), os.O_RDONLY)
end, next_sample = time.time() + span, 0.0
while time.time() < end:
    if trickle > 0: libc.sync_file_range(db, ctypes.c_longlong(0), ctypes.c_longlong(0), 2)
    if time.time() >= next_sample:
        wal = [os.path.getsize(os.path.join(data, f)) for f in os.listdir(data) if f.endswith(".wal")]
        print(datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3], wal[0] if wal else 0, flush=True)
        next_sample = time.time() + 0.02
    time.sleep(trickle / 1000 if trickle > 0 else 0.02)
PY
wait "$loadgen_pid"; wait
python3 - "$out" <<'PY' | tee "$out/timeline.txt"
import collections, os, re, sys
out = sys.argv[1]
fsyncs = [(m.group(1)[:12], float(m.group(2)) * 1000) for m in re.finditer(r"(\S+) fsync\(.*<([0-9.]+)>", open(f"{out}/fsync.txt").read())]
lat = [l.split() for l in open(f"{out}/latency.txt")]
ms = sorted(float(x[1]) for x in lat); f = sorted(x[1] for x in fsyncs)
q = lambda v, p: v[min(len(v) - 1, int(p * len(v)))]
print(f"200s: {len(ms)}, p50 {q(ms, .5):.1f} p99 {q(ms, .99):.1f} max {ms[-1]:.1f} ms; journal fsyncs: {len(f)}, p50 {q(f, .5):.2f} p99 {q(f, .99):.1f} max {f[-1]:.1f} ms")
events = [(t, f"journal fsync {d:.0f} ms") for t, d in fsyncs if d > 20]
slow = collections.defaultdict(float)
for t, v, _ in lat: slow[t[11:21]] = max(slow[t[11:21]], float(v))
events += [(k + "00", f"slowest 200 of these 100 ms: {v:.0f} ms") for k, v in slow.items() if v > 40]
wal = [l.split() for l in open(f"{out}/wal.txt")]
events += [(b[0], f"checkpoint done, WAL {int(a[1]) // 10**6} -> {int(b[1]) // 10**6} MB") for a, b in zip(wal, wal[1:]) if int(b[1]) < int(a[1])]
if os.path.exists(f"{out}/counters.csv"):
    for l in open(f"{out}/counters.csv"):
        p = l.strip().split(",")
        if "pause.time" in l and float(p[-1]) > 0.005: events.append((p[0][11:] + ".000", f"GC pauses {float(p[-1]) * 1000:.0f} ms in the second before"))
for t, e in sorted(events): print(t, e)
PY
