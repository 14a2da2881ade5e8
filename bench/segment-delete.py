#!/usr/bin/env python3
"""What deleting a journal segment does to the disk's other writes: a prober appends 70 KB and fsyncs every 4 ms (a
group commit at ~25,000 events/s), while the main thread writes a 64 MB file, syncs it, and deletes it either at once
(unlink) or as the journal's trimmer does (renamed, cut down 4 MB at a time with 20 ms between the cuts, unlinked).
Prints, per way, how long each deletion took and the slowest fsync of the prober while it ran, then the prober's
percentiles over the whole run. On ext4 mounted `discard` a freed block is trimmed at once, so freeing 64 MB in one go
holds the disk for tens of ms.

Usage: bench/segment-delete.py [DIR (default: a directory under the system's temp, on its filesystem)] [ROUNDS (6)]
"""
import os
import statistics
import sys
import tempfile
import threading
import time

made = len(sys.argv) < 2
directory = tempfile.mkdtemp(prefix="tessera-segment-delete-") if made else sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
os.makedirs(directory, exist_ok=True)
STEP, PAUSE, SIZE = 4 << 20, 0.020, 64 << 20


def make(path):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC)
    block = os.urandom(1 << 20)
    for _ in range(SIZE >> 20):
        os.write(fd, block)
    os.fsync(fd)
    os.close(fd)


def delete_in_steps(path):
    retired = path + ".deleting"
    os.rename(path, retired)
    dfd = os.open(directory, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    size = os.path.getsize(retired)
    while size > STEP:
        size -= STEP
        os.truncate(retired, size)
        time.sleep(PAUSE)
    os.unlink(retired)


samples, stop = [], False


def prober():
    fd = os.open(os.path.join(directory, "probe"), os.O_CREAT | os.O_WRONLY | os.O_APPEND)
    record = b"x" * 70_000
    while not stop:
        started = time.perf_counter()
        os.write(fd, record)
        os.fsync(fd)
        samples.append((time.perf_counter(), time.perf_counter() - started))
        time.sleep(0.004)
    os.close(fd)


thread = threading.Thread(target=prober)
thread.start()
results = {"unlink": [], "steps": []}
try:
    for r in range(rounds):
        for way in results:
            path = os.path.join(directory, f"segment-{r}-{way}.tjl")
            make(path)
            time.sleep(0.5)
            started = time.perf_counter()
            os.unlink(path) if way == "unlink" else delete_in_steps(path)
            ended = time.perf_counter()
            time.sleep(0.3)
            during = [latency for (at, latency) in samples if started <= at <= ended + 0.3]
            results[way].append((ended - started, max(during) if during else 0.0))
finally:
    stop = True
    thread.join()
    os.unlink(os.path.join(directory, "probe"))
    if made:
        os.rmdir(directory)

for way, runs in results.items():
    took = " / ".join(f"{t * 1000:.0f}" for t, _ in runs)
    worst = " / ".join(f"{w * 1000:.0f}" for _, w in runs)
    print(f"{way:>6}: deletion took {took} ms; the prober's slowest fsync meanwhile {worst} ms "
          f"(median {statistics.median(w for _, w in runs) * 1000:.1f})")
latencies = sorted(latency for _, latency in samples)
print(f"prober: {len(latencies)} fsyncs, p50 {statistics.median(latencies) * 1000:.1f} ms, "
      f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms; {directory}")
