using Npgsql;
using Tessera.Core.Collection;
using Tessera.Core.Identity;
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
        new PostgresStore(new PostgresStoreOptions(_database.ConnectionString) { Logger = StoreLog, DedupWindow = dedupWindow, MigrateUpTo = migrateUpTo }, NewEngine());

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
            foreach (var value in new object?[] { e.MessageId, e.SourceId, e.Type.Name(), e.Event, e.UserId, e.AnonymousId, e.GroupId, e.PreviousId, e.Timestamp, e.OriginalTimestamp, e.SentAt, e.ReceivedAt, e.Raw.ToString() })
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
            }

            await command.ExecuteNonQueryAsync();
        }
    }

    protected override async Task<int> SchemaVersionAsync() =>
        Convert.ToInt32(await TestPostgres.ScalarAsync(_database.ConnectionString, "SELECT max(version) FROM schema_migrations"), System.Globalization.CultureInfo.InvariantCulture);

    protected override async Task ExecuteSqlAsync(string sql) => await TestPostgres.ScalarAsync(_database.ConnectionString, sql);

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
        // The count each append keeps agrees with the table, whichever store asks.
        Assert.Equal(distinct, (await second.GetStatsAsync(CancellationToken.None)).Events);
    }

    [Fact]
    public async Task two_stores_resolving_the_same_people_at_once_make_exactly_the_profiles_one_store_would()
    {
        var first = (PostgresStore)await OpenAsync();
        var second = (PostgresStore)await OpenAsync();
        var messages = PeopleMessages(100);

        // Every person's three messages are spread over both stores, in batches appended at the same time.
        var batches = messages.Chunk(6).ToList();
        await Task.WhenAll(batches.Select((batch, i) => Task.Run(() => (i % 2 == 0 ? first : second).AppendAsync(batch, CancellationToken.None))));
        await first.CatchUpAsync(CancellationToken.None);
        await second.CatchUpAsync(CancellationToken.None);

        // One engine fed the stored log in seq order: what a single process would have made.
        var stored = await ReadAllAsync(first);
        Assert.Equal(messages.Count, stored.Count);
        var single = NewEngine();
        var processed = single.Process([.. stored.OrderBy(e => e.Seq).Select(e => (e.Seq, e.Message))]);
        Assert.Equal(processed.ToDictionary(p => p.Seq, p => p.ProfileId), stored.ToDictionary(e => e.Seq, e => e.ProfileId));
        Assert.Equal((100L, 300L), (single.Counts().Profiles, single.Counts().Identifiers));
        Assert.True(single.Counts().Merges > 0, "the shuffle should put some merges after both of their parts");
        foreach (var store in new[] { first, second })
        {
            Assert.Equal(single.Counts(), store.Engine.Counts());
            for (var i = 0; i < 100; i++)
            {
                var owner = single.FindByIdentifier(new Identifier("user_id", $"u-{i}"));
                Assert.All(PersonIdentifiers(i), id => Assert.Equal(owner, store.Engine.FindByIdentifier(id)));
                Assert.Equal(["first_name", "last_name", "plan"], store.Engine.Get(owner!)!.Traits.Keys.Where(k => k != "email").Order());
            }
        }

        Assert.Equal(0L, await TestPostgres.ScalarAsync(_database.ConnectionString, """
            SELECT count(*) FROM (SELECT id_type, id_value FROM identity_changes WHERE kind = 'Linked' GROUP BY 1, 2 HAVING count(*) > 1) twice
            """));
        Assert.Equal(300L, await TestPostgres.ScalarAsync(_database.ConnectionString, "SELECT count(*) FROM identity_changes WHERE kind = 'Linked'"));
    }

    [Fact]
    public async Task a_reresolve_in_one_store_rebuilds_the_other_stores_profiles()
    {
        var first = (PostgresStore)await OpenAsync();
        var second = (PostgresStore)await OpenAsync();
        await AppendAnnAsync(first);
        await second.CatchUpAsync(CancellationToken.None);
        var device = new Identifier("anonymous_id", "a-2");
        var user = new Identifier("user_id", "u-1");
        Assert.Equal(second.Engine.FindByIdentifier(user), second.Engine.FindByIdentifier(device));
        var merged = first.Engine.Get(first.Engine.FindByIdentifier(user)!)!;
        var separation = new IdentitySeparation(device, [.. merged.Identifiers.Where(i => i != device)], Now, "test");

        await first.ReresolveAsync(first.Engine.Fresh(separations: [separation]), apply: true, separation, CancellationToken.None);
        await second.CatchUpAsync(CancellationToken.None);

        Assert.NotEqual(second.Engine.FindByIdentifier(user), second.Engine.FindByIdentifier(device));
        Assert.Equal(first.Engine.FindByIdentifier(device), second.Engine.FindByIdentifier(device));
        Assert.Single(second.Engine.Separations);
        // The second store appends on the rebuilt state: the separation holds there too.
        await second.AppendAsync([Message("m-9", MessageType.Identify, """{"type":"identify","messageId":"m-9","anonymousId":"a-2","userId":"u-1"}""")], CancellationToken.None);
        await first.CatchUpAsync(CancellationToken.None);
        Assert.NotEqual(first.Engine.FindByIdentifier(user), first.Engine.FindByIdentifier(device));
        Assert.Equal(first.Engine.Counts(), second.Engine.Counts());
    }

    [Fact]
    public async Task a_store_that_missed_a_reresolve_rebuilds_its_profiles_before_its_next_append()
    {
        var first = (PostgresStore)await OpenAsync();
        await using var second = new PostgresStore(new PostgresStoreOptions(_database.ConnectionString) { CatchUpInterval = TimeSpan.Zero }, NewEngine());
        await second.OpenAsync(CancellationToken.None);
        await AppendAnnAsync(first);
        var device = new Identifier("anonymous_id", "a-2");
        var user = new Identifier("user_id", "u-1");
        var merged = first.Engine.Get(first.Engine.FindByIdentifier(user)!)!;
        var separation = new IdentitySeparation(device, [.. merged.Identifiers.Where(i => i != device)], Now, "test");
        await first.ReresolveAsync(first.Engine.Fresh(separations: [separation]), apply: true, separation, CancellationToken.None);

        // The second store never caught up: its next append finds a newer generation and rebuilds before resolving.
        await second.AppendAsync([Message("m-9", MessageType.Identify, """{"type":"identify","messageId":"m-9","anonymousId":"a-2","userId":"u-1"}""")], CancellationToken.None);

        Assert.NotEqual(second.Engine.FindByIdentifier(user), second.Engine.FindByIdentifier(device));
        Assert.Equal(0L, await TestPostgres.ScalarAsync(_database.ConnectionString, "SELECT count(*) FROM identity_changes WHERE kind = 'Merged'"));
        await first.CatchUpAsync(CancellationToken.None);
        Assert.Equal(first.Engine.Counts(), second.Engine.Counts());
        Assert.Equal(first.Engine.FindByIdentifier(device), second.Engine.FindByIdentifier(device));
    }

    [Fact]
    public async Task stores_catch_up_with_more_events_than_one_page_whether_idle_or_appending()
    {
        var first = (PostgresStore)await OpenAsync();
        // No catch-up loop in the other two, whose ticks would fill in what a short read missed: the idle one catches
        // up when told, the appending one in its append.
        await using var idle = new PostgresStore(new PostgresStoreOptions(_database.ConnectionString) { CatchUpInterval = TimeSpan.Zero }, NewEngine());
        await idle.OpenAsync(CancellationToken.None);
        await using var appending = new PostgresStore(new PostgresStoreOptions(_database.ConnectionString) { CatchUpInterval = TimeSpan.Zero }, NewEngine());
        await appending.OpenAsync(CancellationToken.None);
        // 10,500 events: the catch-up reads 10,000 at a time.
        await first.AppendAsync(PeopleMessages(3_500), CancellationToken.None);

        await idle.CatchUpAsync(CancellationToken.None);
        await appending.AppendAsync([Message("m-last", MessageType.Identify, """{"type":"identify","messageId":"m-last","userId":"u-3499","traits":{"plan":"last"}}""")], CancellationToken.None);

        var last = new Identifier("email", "person3499@x.com");
        Assert.Equal(first.Engine.Counts(), idle.Engine.Counts());
        Assert.Equal(first.Engine.FindByIdentifier(last), idle.Engine.FindByIdentifier(last));
        // The appending store resolved its event on top of all 10,500: the user id joined the person it already had.
        Assert.Equal(first.Engine.Counts(), appending.Engine.Counts());
        Assert.Equal("\"last\"", appending.Engine.Get(appending.Engine.FindByIdentifier(last)!)!.Traits["plan"].Value!.ToJsonString());
    }

    [Fact]
    public async Task a_computed_trait_defined_in_one_store_is_computed_in_the_other()
    {
        var first = (PostgresStore)await OpenAsync();
        var second = (PostgresStore)await OpenAsync();
        await AppendAnnAsync(first);

        await first.SaveComputedTraitAsync(new Core.Profiles.ComputedTraitDefinition("orders", Core.Profiles.ComputedFunction.Count, "Order Completed"), CancellationToken.None);
        await second.CatchUpAsync(CancellationToken.None);

        var user = new Identifier("user_id", "u-1");
        Assert.Equal("2", second.Engine.Get(second.Engine.FindByIdentifier(user)!)!.Computed["orders"]!.ToJsonString());
        Assert.True(await second.DeleteComputedTraitAsync("orders", CancellationToken.None));
        await first.CatchUpAsync(CancellationToken.None);
        Assert.Empty(first.Engine.ComputedDefinitions);
    }

    /// <summary>
    /// Person i: a track with anonymous id and email (context.traits), a track with the user id alone (a second
    /// profile), then an identify with both that merges them. Shuffled, so the merge often lands before its parts.
    /// </summary>
    internal static List<CollectedEvent> PeopleMessages(int people)
    {
        var messages = Enumerable.Range(0, people).SelectMany(i => new[]
        {
            Message($"p{i}-1", MessageType.Track, $$$$"""{"type":"track","messageId":"p{{{{i}}}}-1","anonymousId":"a-{{{{i}}}}","event":"Viewed","context":{"traits":{"email":"person{{{{i}}}}@x.com","first_name":"F{{{{i}}}}"}}}"""),
            Message($"p{i}-2", MessageType.Identify, $$$$"""{"type":"identify","messageId":"p{{{{i}}}}-2","userId":"u-{{{{i}}}}","traits":{"plan":"plan-{{{{i}}}}"}}"""),
            Message($"p{i}-3", MessageType.Identify, $$$$"""{"type":"identify","messageId":"p{{{{i}}}}-3","anonymousId":"a-{{{{i}}}}","userId":"u-{{{{i}}}}","traits":{"last_name":"L{{{{i}}}}"}}"""),
        }).ToList();
        var random = new Random(7);
        random.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(messages));
        return messages;
    }

    internal static Identifier[] PersonIdentifiers(int i) =>
        [new("user_id", $"u-{i}"), new("anonymous_id", $"a-{i}"), new("email", $"person{i}@x.com")];

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

    [Theory]
    [InlineData("event", "events_event")]
    [InlineData("userId", "events_user_id")]
    [InlineData("anonymousId", "events_anonymous_id")]
    [InlineData("profileId", "events_profile_id")]
    public async Task each_filter_of_the_events_page_can_be_served_by_its_index(string filter, string index)
    {
        await using var store = CreateStore(TimeSpan.FromDays(7), null);
        await store.OpenAsync(CancellationToken.None);
        var query = filter switch
        {
            "event" => new EventQuery(Event: "Order Completed"),
            "userId" => new EventQuery(UserId: "u-1"),
            "anonymousId" => new EventQuery(AnonymousId: "a-1"),
            _ => new EventQuery(ProfileIds: ["p-1", "p-2"]),
        };
        await using var connection = new NpgsqlConnection(_database.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "EXPLAIN " + EventReader.PageSql(query, value =>
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
            return $"${command.Parameters.Count}";
        });
        // An empty table is read whole whatever the indexes; without a sequential scan, only an index can serve it.
        await using (var off = new NpgsqlCommand("SET enable_seqscan = off", connection)) { await off.ExecuteNonQueryAsync(); }

        var plan = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) { plan.Add(reader.GetString(0)); }
        }

        Assert.Contains(plan, line => line.Contains(index, StringComparison.Ordinal));
    }

    [Fact]
    public async Task the_dedup_claim_probes_the_primary_key_for_each_pair_instead_of_reading_every_remembered_pair()
    {
        await using var store = CreateStore(TimeSpan.FromDays(7), null);
        await store.OpenAsync(CancellationToken.None);
        await using var connection = new NpgsqlConnection(_database.ConnectionString);
        await connection.OpenAsync();
        // A remembered set the size of a busy week, analyzed, and a group as large as the indexer's: the planner, once
        // it knows the array's length, prefers reading the whole table into a hash to 20,000 probes, unless told not to.
        await using (var fill = new NpgsqlCommand("""
            INSERT INTO message_ids (source_id, message_id, received_at) SELECT 'src', 'm-' || g, now() FROM generate_series(1, 200000) g;
            ANALYZE message_ids;
            """, connection))
        {
            await fill.ExecuteNonQueryAsync();
        }

        await using var explain = new NpgsqlCommand("EXPLAIN " + PostgresStore.FindMessageIds, connection);
        explain.Parameters.Add(new NpgsqlParameter { Value = Enumerable.Repeat("src", 20_000).ToArray() });
        explain.Parameters.Add(new NpgsqlParameter { Value = Enumerable.Range(190_001, 20_000).Select(i => $"m-{i}").ToArray() });
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) { plan.Add(reader.GetString(0)); }
        }

        Assert.DoesNotContain(plan, line => line.Contains("Seq Scan on message_ids", StringComparison.Ordinal));
        Assert.Contains(plan, line => line.Contains("message_ids_pkey", StringComparison.Ordinal));
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
