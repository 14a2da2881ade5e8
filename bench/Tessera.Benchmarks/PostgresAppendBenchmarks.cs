using BenchmarkDotNet.Attributes;
using Npgsql;
using NpgsqlTypes;
using Tessera.Core.Collection;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Storage.Postgres;

namespace Tessera.Benchmarks;

/// <summary>
/// Issue 3's ceiling: how fast PostgreSQL takes the collection's rows through <see cref="PostgresStore.AppendAsync(IReadOnlyList{CollectedEvent}, CancellationToken)"/>
/// (resolution lock, dedup claim, seqs, identity resolution, binary COPY of events, identity log and trait changes, one
/// durable commit) and through a bare binary COPY of the same rows into a table of the events' columns with only its
/// primary key, in one committed transaction per group of 5,000, the size of a busy group commit. Per row: divide 10⁹
/// by the figure in ns for rows per second. The server is the one <c>TESSERA_BENCH_POSTGRES</c> names, or else the
/// test cluster (<c>TESSERA_TEST_POSTGRES</c>, from <c>source scripts/deps/postgres.sh</c>); each run works in two fresh
/// schemas and drops them.
/// </summary>
[InvocationCount(1, unrollFactor: 1)]
public class PostgresAppendBenchmarks : GroupAppendBenchmark
{
    private const string CopyColumns =
        "(seq, message_id, source_id, type, event, user_id, anonymous_id, group_id, previous_id, profile_id, timestamp, original_timestamp, sent_at, received_at, raw)";

    private string _server = "";
    private string _storeSchema = "";
    private string _bareSchema = "";
    private PostgresStore _store = null!;
    private NpgsqlDataSource _bare = null!;
    private long _seq;

    public static string Server =>
        Environment.GetEnvironmentVariable("TESSERA_BENCH_POSTGRES") is { Length: > 0 } bench ? bench
        : Environment.GetEnvironmentVariable("TESSERA_TEST_POSTGRES") is { Length: > 0 } test ? test
        : throw new InvalidOperationException(
            "No PostgreSQL to measure: set TESSERA_BENCH_POSTGRES to an Npgsql connection string, or run `source scripts/deps/postgres.sh` " +
            "first to start the test cluster (bench/run.sh does).");

    [GlobalSetup]
    public void Setup()
    {
        _server = Server;
        var suffix = Guid.NewGuid().ToString("N")[..8];
        _storeSchema = $"bdn_store_{suffix}";
        _bareSchema = $"bdn_copy_{suffix}";
        _store = new PostgresStore(
            new PostgresStoreOptions(new NpgsqlConnectionStringBuilder(_server) { SearchPath = _storeSchema }.ConnectionString),
            new ProfileEngine(IdentityRules.Default, ProfileRules.Default));
        _store.OpenAsync(CancellationToken.None).GetAwaiter().GetResult();
        _bare = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(_server) { SearchPath = _bareSchema }.ConnectionString);
        using (var connection = _bare.OpenConnection())
        using (var command = new NpgsqlCommand($"""
            CREATE SCHEMA {_bareSchema};
            CREATE TABLE {_bareSchema}.events (
                seq bigint PRIMARY KEY, message_id text NOT NULL, source_id text NOT NULL, type text NOT NULL, event text,
                user_id text, anonymous_id text, group_id text, previous_id text, profile_id text, timestamp timestamptz NOT NULL,
                original_timestamp timestamptz, sent_at timestamptz, received_at timestamptz NOT NULL, raw text NOT NULL);
            """, connection))
        {
            command.ExecuteNonQuery();
        }

        MakeGroup();
    }

    [Benchmark(OperationsPerInvoke = Group, Description = "PostgresStore.AppendAsync, per row (groups of 5,000)")]
    public Task StoreAppend() => _store.AppendAsync(Events, CancellationToken.None);

    [Benchmark(OperationsPerInvoke = Group, Description = "bare PostgreSQL binary COPY, per row (groups of 5,000)")]
    public async Task BareCopy()
    {
        await using var connection = await _bare.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var copy = await connection.BeginBinaryImportAsync($"COPY events {CopyColumns} FROM STDIN (FORMAT BINARY)"))
        {
            foreach (var e in Events)
            {
                await copy.StartRowAsync();
                await copy.WriteAsync(++_seq, NpgsqlDbType.Bigint);
                await copy.WriteAsync(e.MessageId, NpgsqlDbType.Text);
                await copy.WriteAsync(e.SourceId, NpgsqlDbType.Text);
                await copy.WriteAsync(e.Type.Name(), NpgsqlDbType.Text);
                await WriteAsync(copy, e.Event, NpgsqlDbType.Text);
                await WriteAsync(copy, e.UserId, NpgsqlDbType.Text);
                await WriteAsync(copy, e.AnonymousId, NpgsqlDbType.Text);
                await WriteAsync(copy, e.GroupId, NpgsqlDbType.Text);
                await WriteAsync(copy, e.PreviousId, NpgsqlDbType.Text);
                await copy.WriteNullAsync();
                await copy.WriteAsync(e.Timestamp.ToUniversalTime(), NpgsqlDbType.TimestampTz);
                await WriteAsync(copy, e.OriginalTimestamp?.ToUniversalTime(), NpgsqlDbType.TimestampTz);
                await WriteAsync(copy, e.SentAt?.ToUniversalTime(), NpgsqlDbType.TimestampTz);
                await copy.WriteAsync(e.ReceivedAt.ToUniversalTime(), NpgsqlDbType.TimestampTz);
                await copy.WriteAsync(e.Raw.ToString(), NpgsqlDbType.Text);
            }

            await copy.CompleteAsync();
        }

        await transaction.CommitAsync();
    }

    private static async Task WriteAsync<T>(NpgsqlBinaryImporter copy, T? value, NpgsqlDbType type)
    {
        if (value is null) { await copy.WriteNullAsync(); }
        else { await copy.WriteAsync(value, type); }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _bare.Dispose();
        using var connection = new NpgsqlConnection(_server);
        connection.Open();
        using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {_storeSchema} CASCADE; DROP SCHEMA IF EXISTS {_bareSchema} CASCADE", connection);
        drop.ExecuteNonQuery();
    }
}
