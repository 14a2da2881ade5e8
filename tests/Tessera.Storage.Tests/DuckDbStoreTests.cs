using DuckDB.NET.Data;
using Tessera.Core.Collection;
using Tessera.Storage.DuckDb;
using Tessera.Testing;

namespace Tessera.Storage.Tests;

/// <summary>
/// The conformance suite over the embedded store: a fresh DuckDB file per test. Trait values are folded every few
/// rows, so audience tests read traits both folded and still pending.
/// </summary>
public sealed class DuckDbStoreTests : StoreConformanceTests
{
    private readonly string _path = Path.Combine(TempDirectory.Create("duckdb-store"), "tessera.duckdb");

    protected override int LatestSchemaVersion => DuckDbMigrations.Steps[^1].Version;

    protected override ITesseraStore CreateStore(TimeSpan dedupWindow, int? migrateUpTo) =>
        new DuckDbStore(new DuckDbStoreOptions(_path) { DedupWindow = dedupWindow, MemoryLimitMb = 128, Threads = 1, MigrateUpTo = migrateUpTo, TraitFoldRows = 5 }, NewEngine());

    protected override async Task InsertAtVersion1Async(IReadOnlyList<CollectedEvent> events)
    {
        await using var connection = new DuckDBConnection($"Data Source={_path}");
        await connection.OpenAsync();
        foreach (var e in events)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = """
                INSERT INTO events (seq, message_id, source_id, type, event, user_id, anonymous_id, group_id, previous_id, profile_id,
                                    timestamp, original_timestamp, sent_at, received_at, raw)
                SELECT coalesce(max(seq), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $11, $12, $13 FROM events
                """;
            foreach (var value in new object?[] { e.MessageId, e.SourceId, e.Type.Name(), e.Event, e.UserId, e.AnonymousId, e.GroupId, e.PreviousId, e.Timestamp, e.OriginalTimestamp, e.SentAt, e.ReceivedAt, e.Raw })
            {
                command.Parameters.Add(new DuckDBParameter(value ?? DBNull.Value));
            }

            await command.ExecuteNonQueryAsync();
        }
    }

    protected override async Task ExecuteSqlAsync(string sql)
    {
        await using var connection = new DuckDBConnection($"Data Source={_path}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    protected override async Task<int> SchemaVersionAsync()
    {
        await using var connection = new DuckDBConnection($"Data Source={_path}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT max(version) FROM schema_migrations";
        return Convert.ToInt32(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
