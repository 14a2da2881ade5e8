using BenchmarkDotNet.Attributes;
using DuckDB.NET.Data;
using Tessera.Core.Collection;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Storage.DuckDb;

namespace Tessera.Benchmarks;

/// <summary>
/// How fast DuckDB takes the collection's rows: through <see cref="DuckDbStore.AppendAsync(IReadOnlyList{CollectedEvent}, CancellationToken)"/> (dedup index, seq,
/// identity resolution with the default rules, one durable commit) and through a bare appender on the same schema (no dedup), in groups of 5,000 rows, the size
/// of a busy group commit. Per row: divide 10⁹ by the figure in ns for rows per second.
/// </summary>
[InvocationCount(1, unrollFactor: 1)]
public class AppendBenchmarks : GroupAppendBenchmark
{
    private string _directory = "";
    private DuckDbStore _store = null!;
    private DuckDbStore _requests = null!;
    private long _position;
    private DuckDBConnection _bare = null!;
    private long _seq;

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), "tessera-bdn-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_directory);
        _store = new DuckDbStore(new DuckDbStoreOptions(Path.Combine(_directory, "store.duckdb")), new ProfileEngine(IdentityRules.Default, ProfileRules.Default));
        _store.OpenAsync(CancellationToken.None).GetAwaiter().GetResult();
        // Journaled appends wait for the next commit up to the interval: here, until the group's last append (not journaled) ends the wait.
        _requests = new DuckDbStore(
            new DuckDbStoreOptions(Path.Combine(_directory, "requests.duckdb")) { JournaledCommitInterval = TimeSpan.FromHours(1) },
            new ProfileEngine(IdentityRules.Default, ProfileRules.Default));
        _requests.OpenAsync(CancellationToken.None).GetAwaiter().GetResult();
        _bare = new DuckDBConnection($"Data Source={Path.Combine(_directory, "bare.duckdb")}");
        _bare.Open();
        using var command = _bare.CreateCommand();
        command.CommandText = """
            SET memory_limit = '256MB';
            CREATE TABLE events (seq BIGINT NOT NULL, message_id VARCHAR NOT NULL, source_id VARCHAR NOT NULL, type VARCHAR NOT NULL,
                event VARCHAR, user_id VARCHAR, anonymous_id VARCHAR, group_id VARCHAR, previous_id VARCHAR, profile_id VARCHAR,
                timestamp TIMESTAMPTZ NOT NULL, original_timestamp TIMESTAMPTZ, sent_at TIMESTAMPTZ, received_at TIMESTAMPTZ NOT NULL,
                raw VARCHAR NOT NULL);
            """;
        command.ExecuteNonQuery();
        MakeGroup();
    }

    [Benchmark(OperationsPerInvoke = Group, Description = "DuckDbStore.AppendAsync, per row (groups of 5,000)")]
    public Task StoreAppend() => _store.AppendAsync(Events, CancellationToken.None);

    /// <summary>
    /// The same group as the server's indexer stages it under load: request by request (100 events each, the load
    /// generator's batch), the 50 of them committed in one transaction.
    /// </summary>
    [Benchmark(OperationsPerInvoke = Group, Description = "DuckDbStore.StageAsync, 50 requests of 100 in one commit, per row")]
    public Task StoreRequests() => StageInOneCommit(100);

    /// <summary>The group as two large staged appends in one transaction (the indexer's chunks when it is behind).</summary>
    [Benchmark(OperationsPerInvoke = Group, Description = "DuckDbStore.StageAsync, 2 appends of 2,500 in one commit, per row")]
    public Task StoreLargeAppends() => StageInOneCommit(2_500);

    /// <summary>Stages the group in appends of <paramref name="size"/> events; the last, not journaled, ends the committer's wait.</summary>
    private async Task StageInOneCommit(int size)
    {
        for (var start = 0; start < Group - size; start += size)
        {
            await _requests.StageAsync(Events.GetRange(start, size), new Tessera.Storage.Journal.JournalMark("bench", ++_position), CancellationToken.None);
        }

        await _requests.AppendAsync(Events.GetRange(Group - size, size), CancellationToken.None);
    }

    [Benchmark(OperationsPerInvoke = Group, Description = "bare DuckDB appender, per row (groups of 5,000)")]
    public void BareAppend()
    {
        using var appender = _bare.CreateAppender("events");
        foreach (var e in Events)
        {
            appender.CreateRow()
                .AppendValue(++_seq).AppendValue(e.MessageId).AppendValue(e.SourceId).AppendValue(e.Type.Name()).AppendValue(e.Event)
                .AppendValue(e.UserId).AppendValue(e.AnonymousId).AppendValue(e.GroupId).AppendValue(e.PreviousId).AppendNullValue()
                .AppendValue(e.Timestamp).AppendValue(e.OriginalTimestamp).AppendValue(e.SentAt).AppendValue(e.ReceivedAt).AppendRaw(e.Raw)
                .EndRow();
        }

        appender.Close();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _requests.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _bare.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
