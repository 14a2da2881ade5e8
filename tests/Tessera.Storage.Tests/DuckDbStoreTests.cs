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

    // DuckDB's memory at the store's default: an audience that refers to itself is inlined 32 times (as in memory), and
    // that query, with the typed event properties in memory beside the other tables, can need more than 128 MB. The raw
    // JSON's dictionaries are trained after 20 messages and again every 300, so the suite reads rows of every stored
    // form: plain text, and compressed with one dictionary or another.
    protected override ITesseraStore CreateStore(TimeSpan dedupWindow, int? migrateUpTo) =>
        new DuckDbStore(Options(dedupWindow, migrateUpTo), NewEngine());

    private int _rawDictionarySamples = 20;
    private int _dedupRecentSlots = Storage.Events.MessageIdIndex.DefaultMaxRecentSlots;

    private DuckDbStoreOptions Options(TimeSpan dedupWindow, int? migrateUpTo = null) =>
        new(_path) { Logger = StoreLog, DedupWindow = dedupWindow, MemoryLimitMb = 256, Threads = 1, MigrateUpTo = migrateUpTo, TraitFoldRows = 5, RawDictionarySamples = _rawDictionarySamples, RawDictionaryEvery = 300, DedupRecentSlots = _dedupRecentSlots };

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
            foreach (var value in new object?[] { e.MessageId, e.SourceId, e.Type.Name(), e.Event, e.UserId, e.AnonymousId, e.GroupId, e.PreviousId, e.Timestamp, e.OriginalTimestamp, e.SentAt, e.ReceivedAt, e.Raw.ToString() })
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

    /// <summary>
    /// DuckDB runs the journal's commits on one thread, and a query that pays for more (an event page here) or a commit
    /// a caller waits for (an append without the journal) on all of them: they raise DuckDB's threads, and the committer
    /// lowers them again after a journaled commit once the last of them ended a while before.
    /// </summary>
    [Fact]
    public async Task a_parallel_query_or_a_waited_commit_raises_duckdbs_threads_and_the_committer_lowers_them_after_a_while()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var path = Path.Combine(TempDirectory.Create("duckdb-threads"), "tessera.duckdb");
        await using var store = new DuckDbStore(new DuckDbStoreOptions(path) { Threads = 2, Time = time, JournaledCommitInterval = TimeSpan.Zero }, NewEngine());
        await store.OpenAsync(CancellationToken.None);
        var position = 0L;
        async Task StageJournaledAsync(string prefix) =>
            await (await store.StageAsync(Events(10, prefix), new Journal.JournalMark("threads-test", position += 10), CancellationToken.None)).Committed;

        // The start (its restore reads whole tables) ran on both; the first journaled commit after the while lowers them.
        Assert.Equal((true, 2L), await store.QueryThreadsForTestsAsync(CancellationToken.None));
        time.Advance(QueryThreads.LowerAfter);
        await StageJournaledAsync("journaled");
        Assert.Equal((false, 1L), await store.QueryThreadsForTestsAsync(CancellationToken.None));
        Assert.Equal(10, (await store.QueryAsync(new Tessera.Storage.Events.EventQuery(Limit: 100), CancellationToken.None)).Items.Count);
        Assert.Equal((true, 2L), await store.QueryThreadsForTestsAsync(CancellationToken.None));

        // A commit soon after the query keeps them; one after the while lowers them.
        await StageJournaledAsync("soon");
        Assert.Equal((true, 2L), await store.QueryThreadsForTestsAsync(CancellationToken.None));
        time.Advance(QueryThreads.LowerAfter);
        await StageJournaledAsync("later");
        Assert.Equal((false, 1L), await store.QueryThreadsForTestsAsync(CancellationToken.None));

        await store.AppendAsync(Events(10, "direct"), CancellationToken.None);
        Assert.Equal((true, 2L), await store.QueryThreadsForTestsAsync(CancellationToken.None));
        time.Advance(QueryThreads.LowerAfter);
        await StageJournaledAsync("after-direct");
        Assert.Equal((false, 1L), await store.QueryThreadsForTestsAsync(CancellationToken.None));
        Assert.Equal(50, (await store.GetStatsAsync(CancellationToken.None)).Events);
    }

    /// <summary>
    /// A commit that DuckDB refuses (here its table renamed away under it, a real catalog error) fails the callers of
    /// everything in it; the next journaled stage restores the store from its file and tells the indexer to read again
    /// from the last committed position; staged again, the failed events are stored once each (the dedup index was
    /// restored without them), and the profile state holds them. A restore that fails while the cause is still there is
    /// done again whole by the next call. The restore reads whole tables on all of DuckDB's threads, as the start does.
    /// </summary>
    [Fact]
    public async Task a_failed_commit_rewinds_to_the_committed_position_and_the_events_staged_again_are_stored_once()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var store = new DuckDbStore(new DuckDbStoreOptions(_path) { Threads = 2, Time = time, JournaledCommitInterval = TimeSpan.Zero }, NewEngine());
        await store.OpenAsync(CancellationToken.None);
        async Task<Task> StageAsync(string prefix, long position) =>
            (await store.StageAsync(Events(10, prefix), new Journal.JournalMark("fault-test", position), CancellationToken.None)).Committed;

        time.Advance(QueryThreads.LowerAfter);
        await await StageAsync("a", 10);
        Assert.Equal((false, 1L), await store.QueryThreadsForTestsAsync(CancellationToken.None));
        await ExecuteSqlAsync("ALTER TABLE events RENAME TO events_away");
        var failed = await StageAsync("b", 20);
        var error = await Assert.ThrowsAsync<StoreException>(() => failed);
        Assert.Contains("events", error.Message, StringComparison.Ordinal);
        // While the cause is still there the restore fails too, and the next call must restore again, whole.
        var restoreFailed = await Assert.ThrowsAsync<StoreException>(() => StageAsync("c", 30));
        Assert.Contains("restore after a failed commit", restoreFailed.Message, StringComparison.Ordinal);
        await ExecuteSqlAsync("ALTER TABLE events_away RENAME TO events");

        // The next stage with a journal mark restores the state and says where the indexer must read from.
        var rewound = await Assert.ThrowsAsync<Journal.StoreRewoundException>(() => StageAsync("c", 30));
        Assert.Equal(10, rewound.CommittedPosition);
        Assert.Equal((true, 2L), await store.QueryThreadsForTestsAsync(CancellationToken.None));
        Assert.Equal(10, await store.GetJournalPositionAsync("fault-test", CancellationToken.None));

        await await StageAsync("b", 20);
        await await StageAsync("c", 30);
        Assert.Equal(30, await store.GetJournalPositionAsync("fault-test", CancellationToken.None));
        var stored = await ReadAllAsync(store);
        Assert.Equal(30, stored.Count);
        Assert.Equal(30, stored.Select(e => e.Message.MessageId).Distinct().Count());
        Assert.Contains(stored, e => e.Message.MessageId == "b-9");
        // One person (u-1 / a-1) throughout: the restored engine resolved the events staged again to the same profile.
        Assert.Single(stored.Select(e => e.ProfileId).Distinct());
        Assert.NotNull(stored[0].ProfileId);
        var stats = await store.GetStatsAsync(CancellationToken.None);
        Assert.Equal((30, 1), (stats.Events, stats.Profiles));
    }

    /// <summary>
    /// At a low rate every journaled request used to be a commit of its own, each with a fixed cost in DuckDB and a
    /// derivation step after it. Journaled events (durable already) now wait up to the interval to share a commit;
    /// an append without the journal, whose caller waits for the commit, does not wait.
    /// </summary>
    [Fact]
    public async Task journaled_events_arriving_one_by_one_share_commits_while_direct_appends_commit_at_once()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-interval"), "tessera.duckdb");
        await using var store = new DuckDbStore(new DuckDbStoreOptions(path) { Threads = 1, JournaledCommitInterval = TimeSpan.FromSeconds(1) }, NewEngine());
        await store.OpenAsync(CancellationToken.None);
        var commits = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, store.Meter) && instrument.Name == "tessera.store.commit.duration") { l.EnableMeasurementEvents(instrument); }
        };
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref commits));
        listener.Start();

        // One event every 10 ms for a second, as a trickle of single-event requests reaches the journal's indexer.
        var staged = new List<Task>();
        for (var i = 0; i < 100; i++)
        {
            staged.Add((await store.StageAsync([Event($"trickle-{i}")], new Journal.JournalMark("interval-test", i + 1), CancellationToken.None)).Committed);
            await Task.Delay(10);
        }

        await Task.WhenAll(staged);
        var journaledCommits = Volatile.Read(ref commits);
        // The first at once, then one a second over the 1-1.5 s it took; without the interval, one per event.
        Assert.InRange(journaledCommits, 1, 4);
        Assert.Equal(100, (await store.GetStatsAsync(CancellationToken.None)).Events);

        // A direct append is committed at once, not held for the interval.
        await store.StageAsync([Event("last-journaled")], new Journal.JournalMark("interval-test", 101), CancellationToken.None);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await store.AppendAsync([Event("direct")], CancellationToken.None);
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(500), $"a direct append waited {clock.Elapsed.TotalMilliseconds:F0} ms for its commit");
        Assert.Equal(102, (await store.GetStatsAsync(CancellationToken.None)).Events);
    }

    /// <summary>
    /// Staged appends that share a commit write through one appender per table; a statement in between (the repointing
    /// of merged profile ids) must still see the rows appended before it in the same transaction, and the appends after
    /// it must still land.
    /// </summary>
    [Fact]
    public async Task appends_sharing_a_commit_keep_every_row_and_a_merge_between_them_sees_the_profiles_created_before_it()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-shared-commit"), "tessera.duckdb");
        var commits = new List<long>();
        string? live;
        await using (var store = new DuckDbStore(new DuckDbStoreOptions(path) { Threads = 1, JournaledCommitInterval = TimeSpan.FromSeconds(2) }, NewEngine()))
        {
            await store.OpenAsync(CancellationToken.None);
            using var listener = new System.Diagnostics.Metrics.MeterListener();
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, store.Meter) && instrument.Name == "tessera.store.commit.events") { l.EnableMeasurementEvents(instrument); }
            };
            listener.SetMeasurementEventCallback<long>((_, value, _, _) => { lock (commits) { commits.Add(value); } });
            listener.Start();

            // The first commit goes at once; what is staged within the interval after it shares the next one.
            await (await store.StageAsync([Event("warm")], new Journal.JournalMark("shared", 1), CancellationToken.None)).Committed;
            CollectedEvent[][] appends =
            [
                [Event("anonymous-x", userId: null, anonymousId: "a-x")],
                [Event("user-x", userId: "u-x", anonymousId: null)],
                [Event("links-x", userId: "u-x", anonymousId: "a-x")],
                [Event("anonymous-y", userId: null, anonymousId: "a-y")],
                [Event("links-y", userId: "u-x", anonymousId: "a-y")],
            ];
            var staged = new List<Task>();
            for (var i = 0; i < appends.Length; i++)
            {
                staged.Add((await store.StageAsync(appends[i], new Journal.JournalMark("shared", i + 2), CancellationToken.None)).Committed);
            }

            await Task.WhenAll(staged);
            live = store.Engine.FindByIdentifier(new Core.Identity.Identifier("user_id", "u-x"));
        }

        lock (commits) { Assert.Equal([1L, 5L], commits); }
        Assert.NotNull(live);
        await using var connection = new DuckDBConnection($"Data Source={path}");
        await connection.OpenAsync();
        async Task<long> CountAsync(string sql)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.Add(new DuckDBParameter(live));
            return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        }

        Assert.Equal(6, await CountAsync("SELECT count(*) FROM events WHERE $1 IS NOT NULL"));
        // Every event's two properties (revenue, text).
        Assert.Equal(12, await CountAsync("SELECT count(*) FROM event_properties WHERE $1 IS NOT NULL"));
        // The profiles of a-x, u-x and a-y were created in the commit and merged in it: all three ids point at the live one.
        Assert.Equal(3, await CountAsync("SELECT count(*) FROM profile_ids WHERE profile_id = $1"));
        Assert.Equal(4, await CountAsync("SELECT count(*) FROM profile_ids WHERE $1 IS NOT NULL"));
        // Five identifiers: u-1 and a-1 of the first commit, a-x, u-x and a-y of this one.
        Assert.Equal(5, await CountAsync("SELECT count(DISTINCT (id_type, id_value)) FROM profile_identifiers WHERE $1 IS NOT NULL"));
    }

    /// <summary>
    /// Activation's and the journeys' derivation steps run after every commit. A step that reads no audience change and
    /// no event (nothing subscribes to what was committed) writes nothing, so it commits nothing either: its position is
    /// kept in memory, used by the next step, and written to the cursor tables before a destination or journey changes
    /// and when the store closes.
    /// </summary>
    [Fact]
    public async Task derivation_steps_that_read_nothing_write_nothing_and_their_position_is_written_before_a_destination_changes_and_at_close()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-quiet-steps"), "tessera.duckdb");
        long Wal() => new FileInfo(path + ".wal") is { Exists: true } wal ? wal.Length : 0;
        // In the process, a connection with the store's own string shares its database: the cursor tables as they stand.
        async Task<(long Activation, long Journeys, long Deliveries)> CursorsAsync()
        {
            await using var connection = new DuckDBConnection($"Data Source={path}");
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT (SELECT seq FROM activation_cursor), (SELECT seq FROM journey_cursor), (SELECT count(*) FROM deliveries)";
            await using var reader = await command.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            return (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
        }

        var now = DateTimeOffset.UtcNow;
        var claim = new Activation.DeliveryClaim("test", now, now.AddMinutes(1));
        await using (var store = new DuckDbStore(new DuckDbStoreOptions(path) { Threads = 1 }, NewEngine()))
        {
            await store.OpenAsync(CancellationToken.None);
            var deliveries = new Server.Activation.DeliveryDeriver(() => store.Engine, TimeProvider.System);
            var journeys = new Server.Journeys.JourneyRunner(() => store.Engine);
            await store.AppendAsync(Events(20, "quiet"), CancellationToken.None);

            var before = Wal();
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(0, (await store.DeriveDeliveriesAsync(deliveries, claim, null, CancellationToken.None)).Written);
                Assert.Equal(0, (await store.DeriveJourneysAsync(journeys, now, CancellationToken.None)).Moved);
            }

            Assert.Equal(before, Wal());
            Assert.Equal((0L, 0L, 0L), await CursorsAsync());

            // Saving a destination first writes where the quiet steps got to; it hears of what comes after it.
            await store.SaveDestinationAsync(
                new Core.Activation.Destination { Id = "orders", Name = "Orders", Type = "webhook", Events = ["Order Completed"], CreatedAt = now, UpdatedAt = now }, CancellationToken.None);
            Assert.Equal((20L, 20L, 0L), await CursorsAsync());
            await store.AppendAsync(Events(3, "after"), CancellationToken.None);
            Assert.Equal(3, (await store.DeriveDeliveriesAsync(deliveries, claim, null, CancellationToken.None)).Written);
            Assert.Equal(0, (await store.DeriveDeliveriesAsync(deliveries, claim, null, CancellationToken.None)).Written);

            // Events nothing subscribes to: read by no step, so the position moves in memory only, until the store closes.
            await store.AppendAsync(Enumerable.Range(0, 5).Select(i => Event($"viewed-{i}", name: "Product Viewed")).ToList(), CancellationToken.None);
            before = Wal();
            Assert.Equal(0, (await store.DeriveDeliveriesAsync(deliveries, claim, null, CancellationToken.None)).Written);
            Assert.Equal(0, (await store.DeriveJourneysAsync(journeys, now, CancellationToken.None)).Moved);
            Assert.Equal(before, Wal());
            Assert.Equal((23L, 20L, 3L), await CursorsAsync());
        }

        // Closing the store wrote them too.
        Assert.Equal((28L, 28L, 3L), await CursorsAsync());
    }

    /// <summary>
    /// With no destination and no journey a derivation step moves its position to what is committed without asking
    /// DuckDB. It still records consent stated meanwhile, and it never moves past events staged but not yet committed:
    /// a destination saved while they wait hears of them once they are.
    /// </summary>
    [Fact]
    public async Task steps_with_nothing_to_derive_still_record_consent_and_never_pass_events_not_yet_committed()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-skipped-steps"), "tessera.duckdb");
        using var gate = new CommitGate();
        await using var store = new DuckDbStore(new DuckDbStoreOptions(path) { Threads = 1, CommitGate = gate }, NewEngine());
        await store.OpenAsync(CancellationToken.None);
        var now = DateTimeOffset.UtcNow;
        var claim = new Activation.DeliveryClaim("test", now, now.AddMinutes(1));
        var deliveries = new Server.Activation.DeliveryDeriver(() => store.Engine, TimeProvider.System);
        var journeys = new Server.Journeys.JourneyRunner(() => store.Engine);
        async Task StepAsync()
        {
            Assert.Equal(0, (await store.DeriveDeliveriesAsync(deliveries, claim, null, CancellationToken.None)).Written);
            Assert.Equal(0, (await store.DeriveJourneysAsync(journeys, now, CancellationToken.None)).Moved);
        }

        await store.AppendAsync(Events(5, "first"), CancellationToken.None);
        await StepAsync();
        await store.AppendAsync(Events(5, "second"), CancellationToken.None);
        await StepAsync();

        // Consent stated by a message no destination subscribes to is recorded all the same.
        var stated = Event("consent", userId: "c", anonymousId: null) with
        {
            Raw = """{"type":"track","userId":"c","event":"Settings Saved","context":{"consent":{"categoryPreferences":{"marketing":true}}}}""",
        };
        await store.AppendAsync([stated], CancellationToken.None);
        await StepAsync();
        await StepAsync();
        var profile = store.Engine.FindByIdentifier(new Core.Identity.Identifier("user_id", "c"));
        Assert.NotNull(profile);
        var consent = Assert.Single(await store.GetConsentAsync([profile], CancellationToken.None));
        Assert.Equal(("marketing", true), (consent.Category, consent.Granted));

        // Three orders staged, their commit held back; the steps meanwhile stop at what is committed.
        gate.Close();
        var staged = await store.StageAsync(Events(3, "orders"), new Journal.JournalMark("skipped-steps", 1), CancellationToken.None);
        await StepAsync();
        await store.SaveDestinationAsync(
            new Core.Activation.Destination { Id = "orders", Name = "Orders", Type = "webhook", Events = ["Order Completed"], CreatedAt = now, UpdatedAt = now }, CancellationToken.None);
        Assert.False(staged.Committed.IsCompleted, "the orders were committed while their commit was held");
        gate.Open();
        await staged.Committed;
        Assert.Equal(3, (await store.DeriveDeliveriesAsync(deliveries, claim, null, CancellationToken.None)).Written);
    }

    /// <summary>
    /// What waits for the committer is each event packed and the engine's changes, not the message: once a chunk is
    /// staged, the events handed in are garbage even while their commit is held back (flat out, tens of thousands of
    /// events wait, and their messages would be most of the heap).
    /// </summary>
    [Fact]
    public async Task staged_events_wait_for_their_commit_without_keeping_the_messages_handed_in()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-staged-messages"), "tessera.duckdb");
        using var gate = new CommitGate();
        await using var store = new DuckDbStore(new DuckDbStoreOptions(path) { Threads = 1, CommitGate = gate }, NewEngine());
        await store.OpenAsync(CancellationToken.None);

        gate.Close();
        var (staging, messages) = StageForgetting(store, 50);
        var staged = await staging;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(staged.Committed.IsCompleted, "the chunk was committed while its commit was held");
        Assert.Equal(0, messages.Count(m => m.IsAlive));

        gate.Open();
        await staged.Committed;
        Assert.Equal(50, (await store.GetStatsAsync(CancellationToken.None)).Events);
    }

    /// <summary>Stages <paramref name="count"/> new events and keeps only weak references to them (made and handed in here, so no local of the test holds them).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static (Task<Journal.StagedAppend> Staging, WeakReference[] Events) StageForgetting(DuckDbStore store, int count)
    {
        var events = Events(count, "held");
        return (store.StageAsync(events, new Journal.JournalMark("held", 1), CancellationToken.None), events.Select(e => new WeakReference(e)).ToArray());
    }

    /// <summary>The store file's paced writeback runs while the store is open (WritebackPacerTests shows what it does to a file).</summary>
    [Fact]
    public async Task a_store_paces_its_file_while_it_is_open_unless_the_interval_is_zero()
    {
        var directory = TempDirectory.Create("writeback-store");
        await using (var store = new DuckDbStore(new DuckDbStoreOptions(Path.Combine(directory, "paced.duckdb")) { Threads = 1 }, NewEngine()))
        {
            await store.OpenAsync(CancellationToken.None);
            var pacer = store.Pacer;
            Assert.NotNull(pacer);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while (pacer.Calls == 0 && DateTime.UtcNow < deadline) { await Task.Delay(10); }
            Assert.True(pacer.Calls > 0, "the pacer never ran");
            Assert.Null(pacer.Failure);
        }

        await using var unpaced = new DuckDbStore(new DuckDbStoreOptions(Path.Combine(directory, "unpaced.duckdb")) { Threads = 1, WritebackInterval = TimeSpan.Zero }, NewEngine());
        await unpaced.OpenAsync(CancellationToken.None);
        Assert.Null(unpaced.Pacer);
    }

    /// <summary>
    /// DuckDB folds its write-ahead log into the file inside a commit only when no other transaction is running. With
    /// activation deriving deliveries right after every commit, one nearly always was, and the log grew by every
    /// commit, without bound. The committer checkpoints between them once the log is four times the threshold, and
    /// waits for activation's step to end to do so once it is eight times.
    /// </summary>
    [Fact]
    public async Task the_write_ahead_log_stays_bounded_while_activation_derives_deliveries_after_every_commit()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-wal"), "tessera.duckdb");
        await using var store = new DuckDbStore(new DuckDbStoreOptions(path) { CheckpointThresholdMb = 1, Threads = 1 }, NewEngine());
        await store.OpenAsync(CancellationToken.None);
        var now = DateTimeOffset.UtcNow;
        await store.SaveDestinationAsync(
            new Core.Activation.Destination { Id = "orders", Name = "Orders", Type = "webhook", Events = ["Order Completed"], CreatedAt = now, UpdatedAt = now }, CancellationToken.None);
        var deriver = new Server.Activation.DeliveryDeriver(() => store.Engine, TimeProvider.System);
        using var done = new CancellationTokenSource();
        var derivations = 0;
        var activation = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                await store.DeriveDeliveriesAsync(deriver, new Activation.DeliveryClaim("test", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddMinutes(1)), null, CancellationToken.None);
                derivations++;
                await Task.Delay(1);
            }
        });

        var data = new RandomAudienceData(11);
        var position = 0L;
        var largest = 0L;
        foreach (var batch in data.Messages(people: 6000).Chunk(100))
        {
            await store.AppendAsync(batch, new Journal.JournalMark("wal-test", position += batch.Length), CancellationToken.None);
            largest = Math.Max(largest, new FileInfo(path + ".wal") is { Exists: true } wal ? wal.Length : 0);
        }

        await done.CancelAsync();
        await activation;
        var written = new FileInfo(path).Length + largest;
        Assert.True(derivations > 10, $"activation derived only {derivations} times");
        Assert.True(written > 17 * 1024 * 1024, $"the test wrote only {written:N0} bytes: too few to reach the hard bound twice");
        Assert.True(largest < 9 * 1024 * 1024, $"the write-ahead log grew to {largest:N0} bytes with a 1 MB threshold (hard bound: 8 MB and a commit)");
    }

    /// <summary>
    /// While activation is in a step (its transaction open, so DuckDB cannot checkpoint in a commit), commits past the
    /// log's bound (4 MB at a 1 MB threshold) go on without waiting for it, each checkpoint put off counted on the
    /// store's meter; past twice the bound the committer waits for the step to end and then folds the log.
    /// </summary>
    [Fact]
    public async Task past_the_logs_bound_commits_go_on_while_activation_is_in_a_step_and_past_twice_it_they_wait_for_it()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-wal-busy"), "tessera.duckdb");
        await using var store = new DuckDbStore(new DuckDbStoreOptions(path) { CheckpointThresholdMb = 1, Threads = 1 }, NewEngine());
        await store.OpenAsync(CancellationToken.None);
        long Wal() => new FileInfo(path + ".wal") is { Exists: true } wal ? wal.Length : 0;
        var deferred = 0L;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, store.Meter) && instrument.Name == "tessera.store.checkpoint.deferred") { l.EnableMeasurementEvents(instrument); }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref deferred, value));
        listener.Start();
        var batches = new RandomAudienceData(17).Messages(people: 6000).Chunk(100).ToList();
        var sent = 0;
        var position = 0L;
        Task Append() => store.AppendAsync(batches[sent++], new Journal.JournalMark("wal-busy", position += 100), CancellationToken.None);

        using var inStep = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var deriver = new BlockingDeriver(new Server.Activation.DeliveryDeriver(() => store.Engine, TimeProvider.System), inStep, release);
        var step = Task.Run(() => store.DeriveDeliveriesAsync(deriver, new Activation.DeliveryClaim("test", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddMinutes(1)), null, CancellationToken.None));
        Assert.True(inStep.Wait(TimeSpan.FromSeconds(10)), "activation's step did not start");

        try
        {
            // Past the bound, and up to twice it, every commit completes while the step holds activation's lock.
            while (Wal() < 6 * 1024 * 1024)
            {
                Assert.True(sent < batches.Count, $"the log reached only {Wal():N0} bytes");
                var append = Append();
                Assert.True(await Task.WhenAny(append, Task.Delay(TimeSpan.FromSeconds(10))) == append, $"a commit at {Wal():N0} bytes of log waited for activation");
                await append;
            }

            Assert.True(Interlocked.Read(ref deferred) > 0, "no checkpoint past the bound was counted as deferred");

            // Past twice the bound a commit waits for the step, then checkpoints.
            Task? waiting = null;
            while (waiting is null)
            {
                Assert.True(sent < batches.Count, $"the log reached only {Wal():N0} bytes");
                var append = Append();
                if (await Task.WhenAny(append, Task.Delay(TimeSpan.FromSeconds(2))) != append) { waiting = append; }
                else { await append; }
            }

            Assert.True(Wal() >= 8 * 1024 * 1024, $"a commit waited at {Wal():N0} bytes of log, under twice the bound");
            release.Set();
            await step.WaitAsync(TimeSpan.FromSeconds(30));
            await waiting.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(Wal() < 1024 * 1024, $"the log is still {Wal():N0} bytes after the step ended");
        }
        finally
        {
            // A failed assertion must not leave the store's committer waiting for the step when the store is disposed.
            release.Set();
        }
    }

    /// <summary>The real deriver, holding activation's step open (and its lock) until released.</summary>
    private sealed class BlockingDeriver(Activation.IDeliveryDeriver inner, ManualResetEventSlim inStep, ManualResetEventSlim release) : Activation.IDeliveryDeriver
    {
        public Activation.EventInterest Interest(IReadOnlyList<Activation.StoredDestination> destinations) => inner.Interest(destinations);

        public IReadOnlyCollection<string> ConsentProfiles(IReadOnlyList<Activation.StoredDestination> destinations, IReadOnlyList<Audiences.StoredAudienceChange> changes, IReadOnlyList<Events.StoredEvent> events) =>
            inner.ConsentProfiles(destinations, changes, events);

        public IReadOnlyList<Activation.NewDelivery> Derive(Activation.DerivationInput input)
        {
            inStep.Set();
            release.Wait();
            return inner.Derive(input);
        }
    }

    /// <summary>
    /// While a long read holds a transaction open, DuckDB refuses the committer's checkpoint past the log's bound: the
    /// log grows past it, each refusal is counted on the store's meter with DuckDB's reason, and once the read ends the
    /// next commit folds the log.
    /// </summary>
    [Fact]
    public async Task a_checkpoint_refused_while_a_read_holds_a_transaction_is_counted_and_the_next_commit_after_it_folds_the_log()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-refused"), "tessera.duckdb");
        await using var store = new DuckDbStore(new DuckDbStoreOptions(path) { CheckpointThresholdMb = 1, Threads = 1 }, NewEngine());
        await store.OpenAsync(CancellationToken.None);
        var refusals = new List<string>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, store.Meter) && instrument.Name == "tessera.store.checkpoint.refused") { l.EnableMeasurementEvents(instrument); }
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            lock (refusals) { refusals.Add(tags[0].Value as string ?? ""); }
        });
        listener.Start();
        long Wal() => new FileInfo(path + ".wal") is { Exists: true } wal ? wal.Length : 0;
        var batches = new RandomAudienceData(13).Messages(people: 3000).Chunk(100).ToList();

        // DuckDB.NET shares the store's database instance with this connection (same file, same process).
        await using (var reader = new DuckDBConnection($"Data Source={path}"))
        {
            await reader.OpenAsync();
            await using var transaction = await reader.BeginTransactionAsync();
            await using (var read = reader.CreateCommand())
            {
                read.CommandText = "SELECT count(*) FROM events";
                await read.ExecuteScalarAsync();
            }

            var sent = 0;
            while (Wal() < 5 * 1024 * 1024)
            {
                Assert.True(sent < batches.Count, $"the log reached only {Wal():N0} bytes");
                await store.AppendAsync(batches[sent++], CancellationToken.None);
            }

            lock (refusals) { Assert.NotEmpty(refusals); }
            batches = batches[sent..];
        }

        await store.AppendAsync(batches[0], CancellationToken.None);
        Assert.True(Wal() < 1024 * 1024, $"the log is still {Wal():N0} bytes after the read ended");
        lock (refusals) { Assert.All(refusals, reason => Assert.False(string.IsNullOrWhiteSpace(reason))); }
    }

    /// <summary>
    /// The events waiting for the committer are bounded by their JSON's size as well as by their number: past
    /// <c>MaxStagedBytes</c> (held there by a slow commit) the next append waits for the commit, then goes through.
    /// </summary>
    [Fact]
    public async Task an_append_waits_while_the_json_waiting_for_the_committer_is_past_its_byte_bound()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-staged-bytes"), "tessera.duckdb");
        using var gate = new CommitGate();
        await using var store = new DuckDbStore(
            new DuckDbStoreOptions(path) { Threads = 1, MaxStagedBytes = 50_000, CommitGate = gate }, NewEngine());
        await store.OpenAsync(CancellationToken.None);
        var padding = new string('x', 4_000);
        var large = Enumerable.Range(0, 20)
            .Select(i => Event($"large-{i}") with { Raw = $$$"""{"type":"track","event":"Order Completed","userId":"u-1","properties":{"note":"{{{padding}}}"}}""" })
            .ToList();

        gate.Close();
        var first = await store.StageAsync(large, new Journal.JournalMark("bytes-test", 1), CancellationToken.None);
        var next = store.StageAsync([Event("small-1")], new Journal.JournalMark("bytes-test", 2), CancellationToken.None);
        // The commit is held until the gate opens, so however long this thread stalls the append cannot have gone ahead
        // rightly; 300 ms is the time it is given to go ahead wrongly.
        await Task.Delay(300);
        Assert.False(next.IsCompleted, "an append went ahead with 80 KB of JSON waiting against a 50 KB bound");

        gate.Open();
        await first.Committed;
        var second = await next.WaitAsync(TimeSpan.FromSeconds(10));
        await second.Committed;
        Assert.Equal(21, (await store.GetStatsAsync(CancellationToken.None)).Events);
    }

    /// <summary>
    /// What the store holds in memory, on its meter: the events waiting for the committer (held back here by a slow
    /// commit), the dedup index's entries, and DuckDB's buffers by tag.
    /// </summary>
    [Fact]
    public async Task the_store_reports_the_events_waiting_for_their_commit_the_dedup_entries_and_duckdbs_memory()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-memory-metrics"), "tessera.duckdb");
        using var gate = new CommitGate();
        await using var store = new DuckDbStore(new DuckDbStoreOptions(path) { Threads = 1, CommitGate = gate }, NewEngine());
        await store.OpenAsync(CancellationToken.None);
        var gauges = new Dictionary<string, long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, store.Meter) && instrument.Name is "tessera.store.staged.events" or "tessera.store.staged.bytes" or "tessera.store.dedup.entries" or "tessera.store.duckdb.memory")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var key = tags.Length > 0 ? $"{instrument.Name}:{tags[0].Value}" : instrument.Name;
            lock (gauges) { gauges[key] = gauges.GetValueOrDefault(key) + value; }
        });
        listener.Start();
        Dictionary<string, long> Read()
        {
            lock (gauges) { gauges.Clear(); }
            listener.RecordObservableInstruments();
            lock (gauges) { return new Dictionary<string, long>(gauges); }
        }

        var batch = Enumerable.Range(0, 250).Select(i => Event($"held-{i}")).ToList();
        gate.Close();
        var staged = await store.StageAsync(batch, new Journal.JournalMark("memory-test", 1), CancellationToken.None);
        var waiting = Read();
        gate.Open();
        await staged.Committed;
        var committed = Read();

        Assert.Equal(250, waiting["tessera.store.staged.events"]);
        Assert.Equal(batch.Sum(e => (long)e.Raw.Utf8Length), waiting["tessera.store.staged.bytes"]);
        Assert.Equal(250, waiting["tessera.store.dedup.entries"]);
        Assert.Equal(0, committed["tessera.store.staged.events"]);
        Assert.Equal(0, committed["tessera.store.staged.bytes"]);
        Assert.Equal(250, committed["tessera.store.dedup.entries"]);
        Assert.Contains(committed, g => g.Key.StartsWith("tessera.store.duckdb.memory:", StringComparison.Ordinal) && g.Value > 0);
    }

    /// <summary>
    /// The committer reports on its store's own meter (<c>Tessera.Storage</c>) the events it committed, each commit's
    /// duration tagged with whether the write-ahead log was folded into the file during it, and the log's size: with a
    /// 1 MB threshold some commits checkpoint and most do not.
    /// </summary>
    [Fact]
    public async Task the_committer_reports_the_events_it_commits_each_commits_duration_whether_it_checkpointed_and_the_log_size()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-metrics"), "tessera.duckdb");
        await using var store = new DuckDbStore(new DuckDbStoreOptions(path) { CheckpointThresholdMb = 1, Threads = 1 }, NewEngine());
        await store.OpenAsync(CancellationToken.None);
        var committed = 0L;
        var commits = new List<(double Milliseconds, bool Checkpointed)>();
        long? walSize = null;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, store.Meter)) { l.EnableMeasurementEvents(instrument); }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (instrument.Name == "tessera.store.commit.events") { Interlocked.Add(ref committed, value); }
            if (instrument.Name == "tessera.store.wal.size") { walSize = value; }
        });
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            lock (commits) { commits.Add((value, tags[0] is { Key: "checkpointed", Value: true })); }
        });
        listener.Start();

        var stored = 0;
        foreach (var batch in new RandomAudienceData(12).Messages(people: 1500).Chunk(100))
        {
            stored += (await store.AppendAsync(batch, CancellationToken.None)).Stored;
        }

        listener.RecordObservableInstruments();
        Assert.Equal(stored, Interlocked.Read(ref committed));
        lock (commits)
        {
            Assert.All(commits, c => Assert.True(c.Milliseconds > 0));
            Assert.Contains(commits, c => c.Checkpointed);
            Assert.Contains(commits, c => !c.Checkpointed);
        }

        Assert.Equal(new FileInfo(path + ".wal") is { Exists: true } wal ? wal.Length : 0, walSize);
    }

    /// <summary>
    /// Under load the committer keeps one transaction open for many staged chunks, up to <c>BulkCommitEvents</c> (DuckDB's
    /// row group by default), instead of committing every 25 ms: eight chunks staged back to back, faster than the bulk
    /// rate, are committed in one commit of all of them, and the journal position it records is the last chunk's.
    /// </summary>
    [Fact]
    public async Task chunks_staged_faster_than_the_bulk_rate_are_committed_together_in_one_transaction()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-bulk-commit"), "tessera.duckdb");
        var options = new DuckDbStoreOptions(path) { Threads = 1, BulkCommitEvents = 4_000, BulkCommitWindow = TimeSpan.FromSeconds(60) };
        var commits = new List<long>();
        await using (var store = new DuckDbStore(options, NewEngine()))
        {
            await store.OpenAsync(CancellationToken.None);
            using var listener = CommitListener(store, commits);
            var staged = new List<Journal.StagedAppend>();
            for (var chunk = 1; chunk <= 8; chunk++)
            {
                staged.Add(await store.StageAsync(Events(500, $"bulk-{chunk}"), new Journal.JournalMark("bulk", chunk), CancellationToken.None));
            }

            await Task.WhenAll(staged.Select(s => s.Committed)).WaitAsync(TimeSpan.FromSeconds(30));
            lock (commits) { Assert.Equal([4_000L], commits); }
            Assert.Equal(4_000, (await store.GetStatsAsync(CancellationToken.None)).Events);
            Assert.Equal(8, await store.GetJournalPositionAsync("bulk", CancellationToken.None));
        }

        // With bulk commits off the same chunks are committed as they come, in several commits.
        commits.Clear();
        await using (var store = new DuckDbStore(options with { Path = Path.Combine(TempDirectory.Create("duckdb-no-bulk-commit"), "tessera.duckdb"), BulkCommitEvents = 0 }, NewEngine()))
        {
            await store.OpenAsync(CancellationToken.None);
            using var listener = CommitListener(store, commits);
            var staged = new List<Journal.StagedAppend>();
            for (var chunk = 1; chunk <= 8; chunk++)
            {
                staged.Add(await store.StageAsync(Events(500, $"bulk-{chunk}"), new Journal.JournalMark("bulk", chunk), CancellationToken.None));
                await Task.Delay(40);
            }

            await Task.WhenAll(staged.Select(s => s.Committed));
            lock (commits) { Assert.True(commits.Count > 1, $"one commit of {commits.Sum()} events with bulk commits off"); }
        }
    }

    /// <summary>
    /// A transaction held open for a bulk commit is committed at the usual interval once someone waits for it (the read
    /// barrier of a reader that wants what was acknowledged): here the bulk would take ten hours at this rate.
    /// </summary>
    [Fact]
    public async Task a_transaction_held_open_for_a_bulk_commit_is_committed_once_someone_waits_for_it()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-bulk-prompt"), "tessera.duckdb");
        await using var store = new DuckDbStore(
            new DuckDbStoreOptions(path) { Threads = 1, BulkCommitEvents = 1_000_000, BulkCommitWindow = TimeSpan.FromHours(10) }, NewEngine());
        await store.OpenAsync(CancellationToken.None);

        var first = await store.StageAsync(Events(500, "held-1"), new Journal.JournalMark("prompt", 1), CancellationToken.None);
        var second = await store.StageAsync(Events(500, "held-2"), new Journal.JournalMark("prompt", 2), CancellationToken.None);
        await Task.Delay(300);
        Assert.False(second.Committed.IsCompleted, "the chunks were committed at the interval although they came faster than the bulk rate");

        using (store.PromptCommits())
        {
            await Task.WhenAll(first.Committed, second.Committed).WaitAsync(TimeSpan.FromSeconds(20));
        }

        Assert.Equal(1_000, (await store.GetStatsAsync(CancellationToken.None)).Events);
        Assert.Equal(2, await store.GetJournalPositionAsync("prompt", CancellationToken.None));
    }

    /// <summary>
    /// A commit that gives <c>event_properties</c> a row group of rows (122,880) while <c>events</c> gets far fewer is
    /// followed by a checkpoint: DuckDB wrote that row group into the file and left a partly filled one after it, which
    /// its checkpoint would later merge with others by rewriting them. The committer decides by each table's rows, not by
    /// the events (here 12,500 events with ten properties each). A commit of fewer rows than a row group in every table
    /// is not followed by one: its rows wait in the write-ahead log.
    /// </summary>
    [Fact]
    public async Task a_commit_that_gives_any_table_a_row_group_of_rows_is_followed_by_a_checkpoint_and_a_smaller_one_is_not()
    {
        var path = Path.Combine(TempDirectory.Create("duckdb-row-group-checkpoint"), "tessera.duckdb");
        var wal = new FileInfo(path + ".wal");
        await using var store = new DuckDbStore(new DuckDbStoreOptions(path) { Threads = 1 }, NewEngine());
        await store.OpenAsync(CancellationToken.None);

        var small = await store.StageAsync(WideEvents(1_000, "small"), new Journal.JournalMark("rows", 1), CancellationToken.None);
        await small.Committed.WaitAsync(TimeSpan.FromSeconds(30));
        wal.Refresh();
        Assert.True(wal.Exists && wal.Length > 0, "a commit of 10,000 property rows was checkpointed");

        var wide = await store.StageAsync(WideEvents(12_500, "wide"), new Journal.JournalMark("rows", 2), CancellationToken.None);
        await wide.Committed.WaitAsync(TimeSpan.FromSeconds(60));
        wal.Refresh();
        Assert.True(!wal.Exists || wal.Length == 0, $"the log holds {(wal.Exists ? wal.Length : 0):N0} bytes after a commit of 125,000 property rows");
        Assert.Equal(13_500, (await store.GetStatsAsync(CancellationToken.None)).Events);
    }

    /// <summary>Track events with ten properties each (ten <c>event_properties</c> rows).</summary>
    private static List<CollectedEvent> WideEvents(int count, string prefix) =>
        Enumerable.Range(0, count).Select(i => Event($"{prefix}-{i}") with
        {
            Raw = $$$"""{"type":"track","messageId":"{{{prefix}}}-{{{i}}}","userId":"u-1","event":"Order Completed","properties":{"p0":0,"p1":1,"p2":"two","p3":3.5,"p4":true,"p5":"five","p6":6,"p7":"seven","p8":8,"p9":"nine"}}""",
        }).ToList();

    /// <summary>Collects the events of each commit the store reports.</summary>
    private static System.Diagnostics.Metrics.MeterListener CommitListener(DuckDbStore store, List<long> commits)
    {
        var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, store.Meter) && instrument.Name == "tessera.store.commit.events") { l.EnableMeasurementEvents(instrument); }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) =>
        {
            lock (commits) { commits.Add(value); }
        });
        listener.Start();
        return listener;
    }

    /// <summary>
    /// Applying a re-resolve empties profile_traits by creating it again from its own definition (a DELETE through its
    /// primary key took seconds): the table comes back as it was, key included, with every current trait, and later
    /// appends still fold (an upsert, which needs the key) into it.
    /// </summary>
    [Fact]
    public async Task an_applied_reresolve_recreates_profile_traits_as_it_was_and_later_appends_still_fold_into_it()
    {
        var data = new RandomAudienceData(5);
        var messages = data.Messages(people: 60);
        var store = await OpenAsync(dedupWindow: TimeSpan.FromDays(1000));
        foreach (var batch in messages.Take(messages.Count / 2).Chunk(50)) { await store.AppendAsync(batch, CancellationToken.None); }
        const string definition = "SELECT sql FROM duckdb_tables() WHERE table_name = 'profile_traits'";
        const string key = "SELECT constraint_type || ' ' || array_to_string(constraint_column_names, ',') FROM duckdb_constraints() WHERE table_name = 'profile_traits' AND constraint_type = 'PRIMARY KEY'";
        const string current = """
            SELECT profile_id, name, value FROM profile_traits t
            WHERE NOT EXISTS (SELECT 1 FROM profile_trait_updates u WHERE u.profile_id = t.profile_id AND u.name = t.name)
            UNION ALL SELECT profile_id, name, arg_max(value, version) FROM profile_trait_updates GROUP BY profile_id, name
            ORDER BY profile_id, name
            """;
        var tableBefore = await QueryRowsAsync(definition);
        Assert.Equal(["PRIMARY KEY profile_id,name"], await QueryRowsAsync(key));
        var traitsBefore = await QueryRowsAsync(current);
        Assert.NotEmpty(traitsBefore);

        await store.ReresolveAsync(store.Engine.Fresh(), apply: true, null, CancellationToken.None);

        Assert.Equal(tableBefore, await QueryRowsAsync(definition));
        Assert.Equal(["PRIMARY KEY profile_id,name"], await QueryRowsAsync(key));
        Assert.Equal(traitsBefore, await QueryRowsAsync(current));
        foreach (var batch in messages.Skip(messages.Count / 2).Chunk(50)) { await store.AppendAsync(batch, CancellationToken.None); }
        var traits = await QueryRowsAsync(current);
        Assert.True(traits.Count > traitsBefore.Count, $"{traits.Count} current traits after the later appends, {traitsBefore.Count} before them");
        Assert.NotEmpty(await QueryRowsAsync("SELECT 1 FROM profile_traits LIMIT 1"));
    }

    /// <summary>
    /// Applying a re-resolve raises DuckDB's memory cap for its one large transaction (at 10,000,000 events the commit
    /// failed at the everyday 256 MB) and puts the everyday cap back afterwards. Scaled down: with a 16 MB everyday cap
    /// the same apply of 30,000 messages fails out of memory when the cap is not raised, and succeeds when it is.
    /// </summary>
    [Fact]
    public async Task applying_a_reresolve_runs_under_the_raised_memory_cap_and_puts_the_everyday_cap_back_afterwards()
    {
        var messages = new RandomAudienceData(3).Messages(people: 3000);
        async Task<(DuckDbStore Store, string Path)> FilledAsync(int reresolveMemoryLimitMb)
        {
            var path = Path.Combine(TempDirectory.Create("duckdb-cap"), "tessera.duckdb");
            var store = new DuckDbStore(new DuckDbStoreOptions(path) { MemoryLimitMb = 16, ReresolveMemoryLimitMb = reresolveMemoryLimitMb, Threads = 1 }, NewEngine());
            await store.OpenAsync(CancellationToken.None);
            foreach (var batch in messages.Chunk(500)) { await store.AppendAsync(batch, CancellationToken.None); }
            return (store, path);
        }

        var (unraised, _) = await FilledAsync(reresolveMemoryLimitMb: 16);
        await using (unraised)
        {
            var failure = await Assert.ThrowsAsync<DuckDBException>(() => unraised.ReresolveAsync(unraised.Engine.Fresh(), apply: true, null, CancellationToken.None));
            Assert.Contains("Out of Memory", failure.Message, StringComparison.Ordinal);
        }

        var (raised, path) = await FilledAsync(reresolveMemoryLimitMb: 1024);
        await using (raised)
        {
            async Task<string> CapAsync()
            {
                await using var connection = new DuckDBConnection($"Data Source={path}");
                await connection.OpenAsync();
                await using var command = connection.CreateCommand();
                command.CommandText = "SELECT current_setting('memory_limit')";
                return (string)(await command.ExecuteScalarAsync())!;
            }

            var everyday = await CapAsync();
            Assert.Equal("15.2 MiB", everyday);

            await raised.ReresolveAsync(raised.Engine.Fresh(), apply: true, null, CancellationToken.None);

            Assert.Equal(everyday, await CapAsync());
        }
    }

    /// <summary>
    /// A file from before the typed event properties (schema step 10) gets them at its next open, row for row what
    /// appends write, and its audiences read them.
    /// </summary>
    [Fact]
    public async Task a_store_upgraded_to_typed_event_properties_fills_them_from_its_events_as_appends_would()
    {
        var data = new RandomAudienceData(7);
        _rawDictionarySamples = int.MaxValue;
        var store = await OpenAsync(dedupWindow: TimeSpan.FromDays(1000));
        foreach (var batch in data.Messages(people: 40).Chunk(50)) { await store.AppendAsync(batch, CancellationToken.None); }
        var definition = new Core.Audiences.EventCondition(
            "Order Completed", [new Core.Conditions.PropertyFilter("revenue", "gt", System.Text.Json.JsonSerializer.SerializeToElement(20))], Core.Audiences.TimeWindow.AllTime);
        var members = await store.ListAudienceMembersAsync(definition, _ => null, RandomAudienceData.Now, CancellationToken.None).ToListAsync();
        await CloseAsync(store);
        const string rows = "SELECT seq, event, track, ts, profile_id, name, kind, text, num, instant FROM event_properties ORDER BY seq, name";
        var written = await QueryRowsAsync(rows);
        Assert.NotEmpty(written);
        Assert.NotEmpty(members);
        // The file as schema 9 left it: no typed properties, the raw JSON as text (no dictionary was trained, so the
        // column holds the text), so steps 10 and 11 both run at the next open.
        Assert.Empty(await QueryRowsAsync("SELECT id FROM raw_dictionaries"));
        await ExecuteSqlAsync("""
            DROP TABLE event_properties; DROP TABLE raw_dictionaries;
            ALTER TABLE events ALTER raw SET DATA TYPE VARCHAR USING decode(raw);
            DELETE FROM schema_migrations WHERE version >= 10;
            """);

        var upgraded = await OpenAsync(dedupWindow: TimeSpan.FromDays(1000));

        Assert.Equal(LatestSchemaVersion, await SchemaVersionAsync());
        Assert.Equal(members, await upgraded.ListAudienceMembersAsync(definition, _ => null, RandomAudienceData.Now, CancellationToken.None).ToListAsync());
        await CloseAsync(upgraded);
        Assert.Equal(written, await QueryRowsAsync(rows));
        Assert.Empty(await QueryRowsAsync("SELECT key FROM settings WHERE key LIKE 'backfill:%'"));
    }

    /// <summary>
    /// Past its table of recent ids the dedup index keeps the older ones in runs in files (here past 716 ids instead of
    /// 183,500): resends of ids that went there are dropped, before and after the store is reopened (the index rebuilt
    /// from the file), and new ids among them are stored.
    /// </summary>
    [Fact]
    public async Task resends_are_dropped_once_their_ids_are_in_the_dedup_indexs_runs_in_files_and_after_a_reopen()
    {
        _dedupRecentSlots = 1 << 10;
        var first = Events(6_000, "r");
        var store = (DuckDbStore)await OpenAsync(dedupWindow: TimeSpan.FromDays(1000));
        foreach (var batch in first.Chunk(500)) { Assert.Equal(new Storage.Events.AppendResult(500, 0), await store.AppendAsync(batch, CancellationToken.None)); }
        store.MessageIds.WaitForRuns();
        Assert.True(store.MessageIds.Runs > 0, "no run in files");
        Assert.True(store.MessageIds.FileBytes >= 16L * 5_000, $"{store.MessageIds.FileBytes} bytes of runs");

        Assert.Equal(new Storage.Events.AppendResult(10, 6_000), await store.AppendAsync([.. first, .. Events(10, "new")], CancellationToken.None));
        await CloseAsync(store);

        var reopened = (DuckDbStore)await OpenAsync(dedupWindow: TimeSpan.FromDays(1000));
        reopened.MessageIds.WaitForRuns();
        Assert.True(reopened.MessageIds.Runs > 0, "no run in files after the reopen");
        var again = await reopened.AppendAsync([.. first.Where((_, i) => i % 2 == 0), .. Events(10, "new"), .. Events(5, "newer")], CancellationToken.None);
        Assert.Equal(new Storage.Events.AppendResult(5, 3_010), again);
        Assert.Equal(6_015, (await reopened.GetStatsAsync(CancellationToken.None)).Events);
        await CloseAsync(reopened);
    }

    [Fact]
    public async Task raw_messages_are_stored_compressed_once_a_dictionary_is_trained_and_read_back_byte_for_byte_after_a_reopen()
    {
        var data = new RandomAudienceData(11);
        var messages = data.Messages(people: 150);
        Assert.True(messages.Count > 700, $"{messages.Count} messages");
        var store = (DuckDbStore)await OpenAsync(dedupWindow: TimeSpan.FromDays(1000));
        // Appended a few at a time, as the indexer does: each dictionary is taken up by the appends after its training.
        foreach (var batch in messages.Chunk(10)) { await store.AppendAsync(batch, CancellationToken.None); }
        var expected = messages.ToDictionary(m => m.MessageId, m => m.Raw.ToString());
        Assert.Equal(expected, (await ReadAllAsync(store)).ToDictionary(e => e.Message.MessageId, e => e.Message.Raw.ToString()));
        // SQL reads the text through tessera_raw (a connection of this process shares the store's database): every
        // row, plain or compressed, parses as the message it was; NULL stays NULL.
        Assert.Equal(["True|True"], await QueryRowsAsync(
            "SELECT bool_and(json_extract_string(tessera_raw(raw), '$.messageId') = message_id), tessera_raw(NULL::BLOB) IS NULL FROM events"));
        await CloseAsync(store);

        var dictionaries = await QueryRowsAsync("SELECT id, first_seq, samples, octet_length(dictionary) > 0 FROM raw_dictionaries ORDER BY id");
        Assert.True(dictionaries.Count >= 2, $"dictionaries: {string.Join("; ", dictionaries)}");
        var firstSeq = long.Parse(dictionaries[0].Split('|')[1], System.Globalization.CultureInfo.InvariantCulture);
        // Before the first dictionary's rows: the text itself; from them on: compressed, to a fraction of the text.
        Assert.Equal(["True"], await QueryRowsAsync($"SELECT bool_and(starts_with(hex(raw), '7B')) FROM events WHERE seq < {firstSeq}"));
        Assert.Equal(["True"], await QueryRowsAsync($"SELECT bool_and(starts_with(hex(raw), '01')) FROM events WHERE seq >= {firstSeq}"));
        var storedBytes = double.Parse((await QueryRowsAsync($"SELECT avg(octet_length(raw)) FROM events WHERE seq >= {firstSeq}")).Single(), System.Globalization.CultureInfo.InvariantCulture);
        var textBytes = messages.Average(m => m.Raw.Utf8Length);
        Assert.True(storedBytes < textBytes / 2, $"stored {storedBytes:F0} B a message against {textBytes:F0} B of text");

        // Reopened: the dictionaries are read from the file, every message reads back the same, SQL reads the text, and
        // new appends go on compressing.
        var reopened = (DuckDbStore)await OpenAsync(dedupWindow: TimeSpan.FromDays(1000));
        Assert.Equal(expected, (await ReadAllAsync(reopened)).ToDictionary(e => e.Message.MessageId, e => e.Message.Raw.ToString()));
        var more = new RandomAudienceData(12).Messages(people: 20).Select(m => m with { MessageId = "more-" + m.MessageId }).ToList();
        foreach (var batch in more.Chunk(10)) { await reopened.AppendAsync(batch, CancellationToken.None); }
        var all = (await ReadAllAsync(reopened)).ToDictionary(e => e.Message.MessageId, e => e.Message.Raw.ToString());
        Assert.All(more, m => Assert.Equal(m.Raw.ToString(), all[m.MessageId]));
        await CloseAsync(reopened);
        Assert.Equal(["True"], await QueryRowsAsync($"SELECT bool_and(starts_with(hex(raw), '01')) FROM events WHERE message_id LIKE 'more-%'"));
    }

    [Fact]
    public async Task a_store_upgraded_to_the_compressed_raw_column_reopens_from_its_log_as_a_crash_right_after_the_upgrade_leaves_it()
    {
        var messages = Enumerable.Range(0, 60)
            .Select(i => Message($"m-{i}", Core.Collection.MessageType.Track, $$$"""{"type":"track","event":"Viewed","userId":"u-{{{i}}}","properties":{"text":"caf\u00e9 \\x41 {{{i}}}"}}"""))
            .ToList();
        var old = await OpenAsync(migrateUpTo: 10);
        await old.AppendAsync(messages, CancellationToken.None);
        await CloseAsync(old);

        // Upgraded at open; the files copied while it is open are what a kill -9 leaves: the step only in the log.
        var crashed = await CopiedAsAKillLeavesItAsync(await OpenAsync());

        await using var reopened = new DuckDbStore(new DuckDbStoreOptions(crashed) { Threads = 1 }, NewEngine());
        await reopened.OpenAsync(CancellationToken.None);
        Assert.Equal(messages.ToDictionary(m => m.MessageId, m => m.Raw.ToString()),
            (await ReadAllAsync(reopened)).ToDictionary(e => e.Message.MessageId, e => e.Message.Raw.ToString()));
    }

    /// <summary>
    /// From schema step 12 the columns of <c>events</c> and <c>event_properties</c> whose best compression does not depend
    /// on the data have it chosen, so checkpoints do not analyse every method first. A store upgraded to it (the step
    /// only in the log, as a kill -9 right after the upgrade leaves it) reopens with every event and property row, and
    /// once checkpointed its segments use the chosen methods, whatever the values would have made DuckDB pick.
    /// </summary>
    [Fact]
    public async Task a_store_upgraded_to_chosen_compressions_keeps_its_rows_and_checkpoints_each_column_with_its_method()
    {
        CollectedEvent Numbered(int i)
        {
            var json = i % 4 == 0
                ? $$$"""{"type":"identify","userId":"u-{{{i % 30}}}","traits":{"plan":"p{{{i % 3}}}"}}"""
                : $$$"""{"type":"track","event":"E{{{i % 5}}}","userId":"u-{{{i % 30}}}","properties":{"sku":"s-{{{i}}}","n":{{{i}}},"on":{{{(i % 2 == 0 ? "true" : "false")}}}}}""";
            return Message($"m-{i}", i % 4 == 0 ? MessageType.Identify : MessageType.Track, json) with { SourceId = i % 2 == 0 ? "src_a" : "src_b" };
        }

        var messages = Enumerable.Range(0, 300).Select(Numbered).ToList();
        var old = await OpenAsync(migrateUpTo: DuckDbMigrations.ChosenCompressionVersion - 1);
        await old.AppendAsync(messages, CancellationToken.None);
        await CloseAsync(old);
        const string propertyRows = "SELECT seq, event, track, ts, profile_id, name, kind, text, num, instant FROM event_properties ORDER BY seq, name";
        var rows = await QueryRowsAsync(propertyRows);
        Assert.Equal(3 * messages.Count(m => m.Type == MessageType.Track), rows.Count);

        var crashed = await CopiedAsAKillLeavesItAsync(await OpenAsync());

        await using (var reopened = new DuckDbStore(new DuckDbStoreOptions(crashed) { Threads = 1 }, NewEngine()))
        {
            await reopened.OpenAsync(CancellationToken.None);
            Assert.Equal(messages.ToDictionary(m => m.MessageId, m => (m.SourceId, m.Raw.ToString())),
                (await ReadAllAsync(reopened)).ToDictionary(e => e.Message.MessageId, e => (e.Message.SourceId, e.Message.Raw.ToString())));
        }

        Assert.Equal(rows, await QueryRowsAsync(propertyRows, crashed));
        Assert.Equal(DuckDbMigrations.ChosenCompressionVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
            (await QueryRowsAsync("SELECT max(version) FROM schema_migrations", crashed)).Single());
        await QueryRowsAsync("CHECKPOINT", crashed);
        string[] chosen =
        [
            "event_properties.event|Dictionary", "event_properties.kind|Dictionary", "event_properties.name|Dictionary", "event_properties.text|FSST",
            "events.event|Dictionary", "events.message_id|FSST", "events.raw|Uncompressed", "events.source_id|Dictionary", "events.type|Dictionary",
        ];
        Assert.Equal(chosen, await QueryRowsAsync("""
            SELECT DISTINCT t || '.' || column_name, compression FROM (
                SELECT 'events' AS t, * FROM pragma_storage_info('events')
                UNION ALL SELECT 'event_properties', * FROM pragma_storage_info('event_properties'))
            WHERE segment_type <> 'VALIDITY' AND (t || '.' || column_name) IN ('events.event', 'events.message_id', 'events.raw',
                'events.source_id', 'events.type', 'event_properties.event', 'event_properties.kind', 'event_properties.name', 'event_properties.text')
            ORDER BY 1
            """, crashed));
    }

    /// <summary>
    /// Events wait for their commit packed into 32 KB arrays (<c>StagedEvents</c>), not as objects. An append that fills
    /// many of them, with an event that does not fit in one (a message larger than an array) among events with non-ASCII ids, times in
    /// another offset and the optional columns empty, reads back column for column and byte for byte, compressed, with
    /// every typed property, after a reopen too.
    /// </summary>
    [Fact]
    public async Task an_append_packed_into_many_arrays_with_an_event_larger_than_one_reads_back_column_for_column()
    {
        var offset = TimeSpan.FromHours(5.5);
        var start = new DateTimeOffset(2026, 11, 3, 10, 0, 0, offset);
        // A message larger than one packing array by itself, so it is packed into an array of its own.
        var filler = new string('y', StagedEvents.BlockBytes + 100);
        CollectedEvent Message(int i, bool large = false)
        {
            var track = i % 3 != 0;
            var name = track ? $"Viewed ✓ {i % 7}" : null;
            var type = track ? "track" : "identify";
            var eventMember = name is null ? "" : "\"event\":\"" + name + "\",";
            var longMember = large ? ",\"long\":\"" + filler + "\"" : "";
            var properties = $$"""{"n":{{i}},"text":"é ✓ {{i}}"{{longMember}}}""";
            return new CollectedEvent(
                MessageId: $"m-é-{i}",
                SourceId: "src_a",
                Type: track ? MessageType.Track : MessageType.Identify,
                Event: name,
                UserId: $"u-{i % 40}",
                AnonymousId: i % 2 == 0 ? null : $"a-ü-{i}",
                GroupId: i % 5 == 0 ? "g-1" : null,
                PreviousId: null,
                Timestamp: start.AddSeconds(i),
                OriginalTimestamp: i % 2 == 0 ? null : start.AddSeconds(i - 1),
                SentAt: i % 4 == 0 ? null : start.AddSeconds(i + 1),
                ReceivedAt: start.AddSeconds(i + 2).ToUniversalTime(),
                Raw: $$"""{"type":"{{type}}","messageId":"m-é-{{i}}","userId":"u-{{i % 40}}",{{eventMember}}"properties":{{properties}}}""");
        }

        _rawDictionarySamples = 50;
        var store = await OpenAsync(dedupWindow: TimeSpan.FromDays(1000));
        // A dictionary is trained off the append path from the first 50 messages; small appends go on until one has compressed rows.
        var next = 0;
        await store.AppendAsync([.. Enumerable.Range(next, 60).Select(i => Message(i))], CancellationToken.None);
        next += 60;
        for (var tries = 0; (await QueryRowsAsync("SELECT count(*) FROM raw_dictionaries")).Single() == "0"; tries++)
        {
            Assert.True(tries < 100, "no dictionary was trained");
            await Task.Delay(20);
            await store.AppendAsync([Message(next++)], CancellationToken.None);
        }

        // A track (only those have property rows) in the middle; how many messages came before it depends on the training.
        var largeAt = Enumerable.Range(next + 1500, 3).First(i => i % 3 != 0);
        var packed = Enumerable.Range(next, 3000).Select(i => Message(i, large: i == largeAt)).ToList();
        Assert.True(packed[largeAt - next].Raw.Utf8Length > StagedEvents.BlockBytes);
        await store.AppendAsync(packed, CancellationToken.None);

        async Task ReadsBackAsync(ITesseraStore from)
        {
            var read = (await ReadAllAsync(from)).Select(e => e.Message).ToDictionary(m => m.MessageId);
            Assert.All(packed, m => Assert.Equal(m, read[m.MessageId]));
        }

        await ReadsBackAsync(store);
        await CloseAsync(store);
        var first = packed[0].MessageId;
        Assert.Equal(["True|3000"], await QueryRowsAsync($"SELECT bool_and(starts_with(hex(raw), '01')), count(*) FROM events WHERE seq >= (SELECT seq FROM events WHERE message_id = '{first}')"));
        var tracks = packed.Count(m => m.Type == MessageType.Track);
        Assert.Equal([$"{tracks}|{tracks}|1|{filler.Length}"], await QueryRowsAsync($"""
            SELECT count(*) FILTER (name = 'n'), count(*) FILTER (name = 'text' AND text LIKE 'é ✓ %'), count(*) FILTER (name = 'long'), max(length(text)) FILTER (name = 'long')
            FROM event_properties WHERE seq >= (SELECT seq FROM events WHERE message_id = '{first}')
            """));
        var reopened = await OpenAsync(dedupWindow: TimeSpan.FromDays(1000));
        await ReadsBackAsync(reopened);
        await CloseAsync(reopened);
    }

    /// <summary>
    /// Copies the store's file and log while <paramref name="upgraded"/> (just opened, so upgraded) holds them, as a
    /// kill -9 would leave them, then closes it; returns the copy's path.
    /// </summary>
    private async Task<string> CopiedAsAKillLeavesItAsync(ITesseraStore upgraded)
    {
        var crashed = Path.Combine(TempDirectory.Create("duckdb-crashed"), "tessera.duckdb");
        File.Copy(_path, crashed);
        Assert.True(File.Exists(_path + ".wal"), "the upgrade should still be in the log, not yet checkpointed");
        File.Copy(_path + ".wal", crashed + ".wal");
        await CloseAsync(upgraded);
        return crashed;
    }

    private async Task<List<string>> QueryRowsAsync(string sql, string? path = null)
    {
        await using var connection = new DuckDBConnection($"Data Source={path ?? _path}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(string.Join("|", Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "NULL" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture))));
        }

        return rows;
    }
}
