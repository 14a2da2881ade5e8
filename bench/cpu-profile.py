#!/usr/bin/env python3
"""Groups `perf script` output (the whole server, call stacks on) by thread and by what each sample was doing.

Usage: bench/cpu-profile.py PERF_SCRIPT_OUTPUT [top]. A sample goes to the first category whose marker is in its
stack (so a category holds what runs under it, e.g. "zstd compress" inside the packing); the rest by its leaf's
library. Prints the share of all samples per category, then per thread and category, then the top managed frames
of what was left uncategorised and the top functions DuckDB's samples were in (their leaf: DuckDB's library carries no
frame pointers, so its callers are not known). Written by bench/cpu-profile.sh.
"""
import collections
import re
import sys

# (category, markers): the first category with a marker in the stack takes the sample; a marker that is a tuple needs
# all of its parts in the stack.
CATEGORIES = [
    ("zstd compress", ["ZSTD_compress"]),
    ("zstd decompress", ["ZSTD_decompress", "RawCodec::Decompress"]),
    # Before the engine: they are typed inside its call, from its parse (since the twenty-seventh session), and count here.
    ("properties typed (engine's thread)", ["EventProperties::Write"]),
    ("engine (identity, traits, audiences)", ["ProfileEngine::Process"]),
    ("request validation", ["MessageValidator"]),
    ("request body parse", ["CollectionBody::TryParse"]),
    ("journal decode", ["JournalReader", "EventCodec::Read"]),
    ("dedup index", ["MessageIdIndex", "MessageIdRun"]),
    ("append event_properties", ["AppendEventProperties"]),
    ("append events", ["AppendEvents"]),
    ("garbage collector", ["gc_heap", "WKS::", "SVR::"]),
]
THREADS = ["Tessera DuckDB", "Tessera journal", ".NET TP Worker", "dotnet", "Tessera group c"]
THREAD_NAMES = {
    "Tessera DuckDB": "committer",
    "Tessera journal": "engine (indexer)",
    ".NET TP Worker": "HTTP requests",
    "dotnet": "DuckDB's workers",
    "Tessera group c": "group commit",
}


# The committer's thread waiting for a query DuckDB's worker thread runs (flat out, mostly its COMMIT and checkpoint):
# DuckDB's PendingQuery loop polls its task queue without sleeping. DuckDB's library has no frame pointers, so these are
# told by the leaf alone; the locks count here too (the queue's, taken at every poll), on the committer's thread only.
SPIN_LEAVES = [
    "Executor::ExecuteTask", "ClientContext::ExecuteTaskInternal", "PendingQueryResult::CheckExecutableInternal",
    "PendingQueryResult::ExecuteTaskInternal", "ConcurrentQueue::DequeueFromProducer", "duckdb_moodycamel::",
    "TaskScheduler::GetTaskFromProducer", "pthread_mutex_lock", "pthread_mutex_unlock",
]


def category(stack, leaf, thread):
    for name, markers in CATEGORIES:
        if any(all(p in stack for p in m) if isinstance(m, tuple) else m in stack for m in markers):
            return name
    if thread == "committer" and any(f in leaf for f in SPIN_LEAVES):
        return "DuckDB: committer polling for its worker"
    if "libduckdb" in leaf:
        return "DuckDB (other)"
    if "kernel" in leaf:
        return "kernel (other)"
    if "libc.so" in leaf:
        return "libc (other)"
    if "libcoreclr" in leaf:
        return "runtime (other)"
    return "managed (other)"


def main():
    samples = [s for s in open(sys.argv[1], errors="replace").read().split("\n\n") if s.strip()]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    by_category = collections.Counter()
    by_thread = collections.Counter()
    by_thread_category = collections.Counter()
    leftover = collections.Counter()
    duckdb = collections.Counter()
    for sample in samples:
        lines = sample.strip().split("\n")
        if len(lines) < 2:
            continue
        thread = next((t for t in THREADS if lines[0].startswith(t)), "other threads")
        thread = THREAD_NAMES.get(thread, thread)
        cat = category(sample, lines[1], thread)
        by_category[cat] += 1
        by_thread[thread] += 1
        by_thread_category[(thread, cat)] += 1
        if "libduckdb" in lines[1]:
            duckdb[re.sub(r"\+0x[0-9a-f]+.*", "", lines[1].strip().split(" ", 1)[1])[:90]] += 1
        if cat == "managed (other)":
            frames = [re.sub(r"\(.*", "", l.strip().split(" ", 1)[1]) for l in lines[1:] if "Tessera." in l]
            leftover[frames[0].split("]")[-1].strip()[:90] if frames else "(no Tessera frame)"] += 1
    n = sum(by_category.values())
    print(f"{n} samples")
    print("\nby what it was doing:")
    for cat, count in by_category.most_common():
        print(f"  {count / n * 100:5.1f} %  {cat}")
    print("\nby thread:")
    for thread, count in by_thread.most_common():
        print(f"  {count / n * 100:5.1f} %  {thread}")
    print("\nby thread and what it was doing:")
    for (thread, cat), count in by_thread_category.most_common(top * 2):
        print(f"  {count / n * 100:5.1f} %  {thread:18} {cat}")
    print("\nmanaged (other), by the innermost Tessera frame:")
    for frame, count in leftover.most_common(top):
        print(f"  {count / n * 100:5.1f} %  {frame}")
    print("\nDuckDB, by the function each sample was in:")
    for function, count in duckdb.most_common(top):
        print(f"  {count / n * 100:5.1f} %  {function}")


if __name__ == "__main__":
    main()
