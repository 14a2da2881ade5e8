using Npgsql;
using Tessera.Core.Collection;
using Tessera.Storage.Events;
using Tessera.Storage.Postgres;
using Tessera.Testing;

namespace Tessera.Storage.Tests;

/// <summary>
/// The conformance suite over PostgreSQL (a fresh schema per test in the server named by <c>TESSERA_TEST_POSTGRES</c>),
/// and what only a shared store must do: stay right when several stores write at once.
/// </summary>
public sealed class PostgresStoreTests : StoreConformanceTests
{
    private readonly (string Schema, string ConnectionString) _database = TestPostgres.NewSchema("conf");

    protected override int LatestSchemaVersion => PostgresMigrations.Steps[^1].Version;

    protected override ITesseraStore CreateStore(TimeSpan dedupWindow, int? migrateUpTo) =>
        new PostgresStore(new PostgresStoreOptions(_database.ConnectionString) { DedupWindow = dedupWindow, MigrateUpTo = migrateUpTo }, NewEngine());

    protected override async Task InsertAtVersion1Async(IReadOnlyList<CollectedEvent> events)
    {
        await using var connection = new NpgsqlConnection(_database.ConnectionString);
        await connection.OpenAsync();
        foreach (var e in events)
        {
            await using var command = new NpgsqlCommand("""
                INSERT INTO events (message_id, source_id, type, event, user_id, anonymous_id, group_id, previous_id,
                                    timestamp, original_timestamp, sent_at, received_at, raw)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                """, connection);
            foreach (var value in new object?[] { e.MessageId, e.SourceId, e.Type.Name(), e.Event, e.UserId, e.AnonymousId, e.GroupId, e.PreviousId, e.Timestamp, e.OriginalTimestamp, e.SentAt, e.ReceivedAt, e.Raw })
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
            }

            await command.ExecuteNonQueryAsync();
        }
    }

    protected override async Task<int> SchemaVersionAsync() =>
        Convert.ToInt32(await TestPostgres.ScalarAsync(_database.ConnectionString, "SELECT max(version) FROM schema_migrations"), System.Globalization.CultureInfo.InvariantCulture);

    protected override Task CleanUpAsync() => TestPostgres.DropSchemaAsync(_database.Schema);

    [Fact]
    public async Task two_stores_appending_the_same_message_ids_at_once_store_each_exactly_once()
    {
        // Two stores are two connection pools, as two Tessera processes would have.
        var first = await OpenAsync();
        var second = await OpenAsync();
        var batches = Enumerable.Range(0, 20)
            .Select(b => Enumerable.Range(0, 200).Select(i => Event($"m-{(b * 100) + i}")).ToList())
            .ToList();

        var results = await Task.WhenAll(batches.SelectMany(batch => new[]
        {
            Task.Run(() => first.AppendAsync(batch, CancellationToken.None)),
            Task.Run(() => second.AppendAsync(batch.AsEnumerable().Reverse().ToList(), CancellationToken.None)),
        }));

        var distinct = batches.SelectMany(b => b).Select(e => e.MessageId).Distinct().Count();
        Assert.Equal(distinct, results.Sum(r => r.Stored));
        var stored = await ReadAllAsync(first);
        Assert.Equal(distinct, stored.Count);
        Assert.Equal(distinct, stored.Select(e => e.Message.MessageId).Distinct().Count());
    }

    [Fact]
    public async Task stores_opening_an_empty_schema_at_once_migrate_it_once()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => CreateStore(TimeSpan.FromDays(7), null)).ToList();
        try
        {
            await Task.WhenAll(stores.Select(s => Task.Run(() => s.OpenAsync(CancellationToken.None))));

            Assert.Equal(
                (long)PostgresMigrations.Steps.Count,
                await TestPostgres.ScalarAsync(_database.ConnectionString, "SELECT count(*) FROM schema_migrations"));
            Assert.Equal(new AppendResult(1, 0), await stores[3].AppendAsync([Event("m-1")], CancellationToken.None));
        }
        finally
        {
            foreach (var s in stores) { await s.DisposeAsync(); }
        }
    }

    [Fact]
    public async Task remembered_message_ids_older_than_the_window_are_purged()
    {
        var store = new PostgresStore(new PostgresStoreOptions(_database.ConnectionString) { DedupWindow = TimeSpan.FromHours(1), PurgeInterval = TimeSpan.Zero }, NewEngine());
        await using (store)
        {
            await store.OpenAsync(CancellationToken.None);
            await store.AppendAsync([Event("old", receivedAt: DateTimeOffset.UtcNow.AddHours(-2))], CancellationToken.None);

            await store.AppendAsync([Event("new")], CancellationToken.None);

            Assert.Equal("new", await TestPostgres.ScalarAsync(_database.ConnectionString, "SELECT string_agg(message_id, ',') FROM message_ids"));
            Assert.Equal(2L, await TestPostgres.ScalarAsync(_database.ConnectionString, "SELECT count(*) FROM events"));
        }
    }

    [Fact]
    public async Task the_schema_named_by_search_path_is_created_as_postgresql_reads_the_name()
    {
        var upper = _database.Schema.ToUpperInvariant();
        var builder = new NpgsqlConnectionStringBuilder(TestPostgres.ConnectionString) { SearchPath = upper + ", public" };
        await using var store = new PostgresStore(new PostgresStoreOptions(builder.ConnectionString), NewEngine());

        await store.OpenAsync(CancellationToken.None);
        await store.AppendAsync([Event("m-1")], CancellationToken.None);

        Assert.Equal(1L, await TestPostgres.ScalarAsync(TestPostgres.ConnectionString, $"SELECT count(*) FROM {_database.Schema}.events"));
    }

    [Fact]
    public async Task connections_killed_by_an_administrator_fail_one_append_with_unavailable_then_the_pool_reconnects()
    {
        var application = $"tessera-kill-{Guid.NewGuid():N}";
        var builder = new NpgsqlConnectionStringBuilder(_database.ConnectionString) { ApplicationName = application };
        await using var store = new PostgresStore(new PostgresStoreOptions(builder.ConnectionString), NewEngine());
        await store.OpenAsync(CancellationToken.None);
        await store.AppendAsync([Event("m-0")], CancellationToken.None);

        await TestPostgres.ScalarAsync(TestPostgres.ConnectionString, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", application);
        var failures = 0;
        for (var i = 1; i <= 3; i++)
        {
            try
            {
                await store.AppendAsync([Event($"m-{i}")], CancellationToken.None);
            }
            catch (StoreUnavailableException)
            {
                failures++;
            }
        }

        Assert.True(failures <= 1, $"{failures} appends failed after the kill; the pool should have reconnected after the first");
        Assert.True(await store.IsAvailableAsync(CancellationToken.None));
        Assert.Equal(4 - failures, (await store.GetStatsAsync(CancellationToken.None)).Events);
    }

    [Fact]
    public async Task a_server_out_of_connections_is_unavailable_not_broken()
    {
        var role = $"tessera_limited_{Guid.NewGuid():N}"[..30];
        await TestPostgres.ScalarAsync(TestPostgres.ConnectionString, $"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1");
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(TestPostgres.ConnectionString) { Username = role, Pooling = false };
            await using var holder = new NpgsqlConnection(builder.ConnectionString);
            await holder.OpenAsync();
            await using var store = new PostgresStore(new PostgresStoreOptions(builder.ConnectionString), NewEngine());

            var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.OpenAsync(CancellationToken.None));

            Assert.Contains("no free connection", error.Message, StringComparison.Ordinal);
            Assert.False(await store.IsAvailableAsync(CancellationToken.None));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await TestPostgres.ScalarAsync(TestPostgres.ConnectionString, $"DROP ROLE IF EXISTS {role}");
        }
    }

    [Fact]
    public async Task an_unreachable_server_is_unavailable_and_the_message_names_where_it_looked()
    {
        var port = TesseraProcess.FreePort();
        await using var store = new PostgresStore(new PostgresStoreOptions($"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Timeout=3"), NewEngine());

        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.OpenAsync(CancellationToken.None));

        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.False(await store.IsAvailableAsync(CancellationToken.None));
    }

    [Fact]
    public async Task a_database_that_does_not_exist_is_reported_in_words_an_operator_can_act_on()
    {
        var builder = new NpgsqlConnectionStringBuilder(TestPostgres.ConnectionString) { Database = "no_such_database_here" };
        await using var store = new PostgresStore(new PostgresStoreOptions(builder.ConnectionString), NewEngine());

        var error = await Assert.ThrowsAsync<StoreException>(() => store.OpenAsync(CancellationToken.None));

        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
        Assert.Contains("--postgres", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task a_malformed_connection_string_is_refused_before_connecting()
    {
        var error = Assert.Throws<StoreException>(() => new PostgresStore(new PostgresStoreOptions("Hots=db;;Nonsense"), NewEngine()));

        Assert.Contains("--postgres", error.Message, StringComparison.Ordinal);
        await Task.CompletedTask;
    }
}
