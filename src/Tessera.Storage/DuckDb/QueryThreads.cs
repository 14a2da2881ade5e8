namespace Tessera.Storage.DuckDb;

/// <summary>
/// How many threads DuckDB runs with: one (no worker: the thread that runs a statement runs all of it, the committer its
/// checkpoints) while only the store's writes and its small reads run, and all of <see cref="DuckDbStoreOptions.Threads"/>
/// while a query that pays for them runs (audience previews and member lists, event pages, re-resolving) or a commit a
/// caller waits for (an append without the journal, whose rate is its commits' latency: on one thread `--no-journal`
/// ran 19,200-22,600 events/s flat out, with both 21,120-23,895), and until <see cref="LowerAfter"/> after the last
/// one ended. DuckDB's worker took a checkpoint's work from the committer, which waited for it, and the two held their
/// compression analyses' memory at once: flat out with one thread the highest resident set was ~10-18 MB lower
/// (docs/benchmarks.md, "One parse at the same rate, and DuckDB's threads" and "The C library's heap trimmed, and DuckDB
/// on one thread while it only writes"), but an audience preview at a million profiles took 699-763 ms instead of
/// 393-492.
/// </summary>
/// <remarks>
/// DuckDB's <c>threads</c> is one setting for the whole database: raising it starts the workers, lowering it waits for
/// them to finish their task at hand. Raised by the query that needs it before it runs; lowered by the committer
/// between its transactions (<see cref="LowerIfIdle"/>), so it costs nothing while nothing is written.
/// </remarks>
internal sealed class QueryThreads(int threads, Action<int> set, TimeProvider time)
{
    /// <summary>How long after the last parallel query DuckDB keeps its workers (several previews in a row raise it once).</summary>
    public static readonly TimeSpan LowerAfter = TimeSpan.FromSeconds(5);

    private readonly Lock _lock = new();
    private int _queries;
    private bool _raised;
    private long _lastEnded;

    /// <summary>The threads DuckDB is opened with: one when there are more to raise it to.</summary>
    public int Initial => Math.Min(threads, 1);

    /// <summary>Whether DuckDB runs with all its threads now.</summary>
    public bool Raised
    {
        get { lock (_lock) { return _raised || threads <= 1; } }
    }

    /// <summary>Raises DuckDB's threads for a query, until the lease is disposed (and <see cref="LowerAfter"/>).</summary>
    public Lease Enter()
    {
        if (threads <= 1) { return default; }
        lock (_lock)
        {
            if (!_raised)
            {
                set(threads);
                _raised = true;
            }

            _queries++;
        }

        return new Lease(this);
    }

    /// <summary>Lowers DuckDB to one thread when no parallel query has run for <see cref="LowerAfter"/>; false if it did not.</summary>
    public bool LowerIfIdle()
    {
        if (threads <= 1) { return false; }
        lock (_lock)
        {
            if (!_raised || _queries > 0 || time.GetElapsedTime(_lastEnded) < LowerAfter) { return false; }
            set(1);
            _raised = false;
            return true;
        }
    }

    private void Exit()
    {
        lock (_lock)
        {
            _queries--;
            _lastEnded = time.GetTimestamp();
        }
    }

    /// <summary>A parallel query's hold on DuckDB's threads.</summary>
    public readonly struct Lease(QueryThreads? owner) : IDisposable
    {
        public void Dispose() => owner?.Exit();
    }
}
