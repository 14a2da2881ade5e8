using System.Runtime.CompilerServices;
using Npgsql;
using NpgsqlTypes;
using Tessera.Core.Audiences;
using Tessera.Core.Collection;
using Tessera.Core.Profiles;
using Tessera.Storage.Audiences;
using Tessera.Storage.Audiences.Dialects;
using Tessera.Storage.Events;
using Tessera.Storage.Journal;
using Tessera.Storage.Profiles;
using Tessera.Storage.Sources;

namespace Tessera.Storage.Postgres;

/// <summary>
/// The shared store: one PostgreSQL database (or schema) that several Tessera processes write at once. Dedup goes
/// through the <c>message_ids</c> table in the same transaction as the events. Identity resolution is serialised
/// across processes by an advisory lock per schema taken first in every append: the process holding it catches its
/// <see cref="ProfileEngine"/> up with what the others committed, allocates seqs (so seq order is commit order),
/// resolves its batch and commits events, identity log and trait changes together. Npgsql's pool replaces
/// connections lost to a restart of the server by itself; after such a loss the pool is cleared so that idle dead
/// connections are not tried one by one.
/// </summary>
public sealed partial class PostgresStore : ITesseraStore
{
    private const int MaxConflictRetries = 3;
    private const string CopyEvents =
        "COPY events (seq, message_id, source_id, type, event, user_id, anonymous_id, group_id, previous_id, profile_id, " +
        "timestamp, original_timestamp, sent_at, received_at, raw) FROM STDIN (FORMAT BINARY)";

    /// <summary>How many events the engine resolves at a time while the events before them are copied.</summary>
    private const int ResolveSlice = 1_000;

    // Which of the batch's (source, messageId) pairs are remembered, with when each was last seen: one primary-key probe
    // a pair. The LIMIT keeps the planner from turning the lookup into a join, which it made a hash join over a
    // sequential scan of the whole table once it knew the array's length (measured at 1,000,000 remembered pairs and
    // 20,000 looked up: 410 ms, against 60 ms probing, and growing with the table).
    internal const string FindMessageIds = """
        SELECT k.i, m.received_at
        FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(source_id, message_id, i)
        CROSS JOIN LATERAL (
            SELECT received_at FROM message_ids m WHERE m.source_id = k.source_id AND m.message_id = k.message_id LIMIT 1) m
        """;

    private const string CopyMessageIds = "COPY message_ids (source_id, message_id, received_at) FROM STDIN (FORMAT BINARY)";

    // Renews pairs last seen before the window (they count as new again); inserts them should a purge have removed
    // them since they were read.
    private const string RenewMessageIds = """
        INSERT INTO message_ids AS m (source_id, message_id, received_at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
        ON CONFLICT (source_id, message_id) DO UPDATE SET received_at = EXCLUDED.received_at
        """;

    private readonly PostgresStoreOptions _options;
    private readonly NpgsqlConnectionStringBuilder _settings;
    private readonly NpgsqlDataSource _dataSource;
    private readonly string? _schema;
    private long _nextPurgeTicks;

    public PostgresStore(PostgresStoreOptions options, ProfileEngine engine)
    {
        _options = options;
        _engine = engine;
        try
        {
            _settings = new NpgsqlConnectionStringBuilder(options.ConnectionString);
        }
        catch (ArgumentException e)
        {
            throw new StoreException($"--postgres: '{e.Message}'; expected an Npgsql connection string such as \"Host=db;Username=tessera;Password=...;Database=tessera\".", e);
        }

        _schema = SchemaOf(_settings.SearchPath);
        _dataSource = NpgsqlDataSource.Create(_settings);
    }

    public string Kind => "postgres";

    public event Action? Appended;

    public async Task OpenAsync(CancellationToken cancellationToken)
    {
        await RunAsync("schema migration", async connection =>
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            // Held to the end of the transaction: a second process starting now waits here, then finds nothing to do.
            // Keyed by schema, so tests (and workspaces) in other schemas of the same database do not wait.
            await ExecuteAsync(connection, "SELECT pg_advisory_xact_lock(74551, hashtext($1))", cancellationToken, _schema ?? "public");
            if (_schema is not null) { await ExecuteAsync(connection, $"CREATE SCHEMA IF NOT EXISTS {QuoteIdentifier(_schema)}", cancellationToken); }
            await ExecuteAsync(connection, "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, description text, applied_at timestamptz)", cancellationToken);
            var current = await ScalarAsync<int>(connection, "SELECT coalesce(max(version), 0) FROM schema_migrations", cancellationToken);
            var upgrade = SchemaUpgrade.Start(PostgresMigrations.Steps, current, _options.MigrateUpTo, _options.Logger, _schema is null ? "PostgreSQL" : $"PostgreSQL (schema {_schema})");
            await upgrade.ApplyEachAsync(async step =>
            {
                await ExecuteAsync(connection, step.Sql, cancellationToken);
                await ExecuteAsync(connection, "INSERT INTO schema_migrations VALUES ($1, $2, now())", cancellationToken, step.Version, step.Description);
            });

            // PostgreSQL's DDL is transactional: the upgrade applies whole or not at all (its step lines come before
            // the commit; the schema reached, after it).
            await transaction.CommitAsync(cancellationToken);
            upgrade.Done();
            return 0;
        }, cancellationToken);

        if (_options.MigrateUpTo is { } upTo && upTo < 3) { return; }
        foreach (var source in await ListSourcesAsync(cancellationToken)) { Engine.KnowSource(source.Id, source.Name); }
        await RestoreProfilesAsync(cancellationToken);
        if (_options.MigrateUpTo is null or >= 4) { await WriteProfileStateIfMissingAsync(cancellationToken); }
        StartCatchUpLoop();
    }

    public async Task<bool> IsAvailableAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(3));
            await RunAsync("SELECT 1", connection => ScalarAsync<int>(connection, "SELECT 1", timeout.Token), timeout.Token);
            return true;
        }
        catch (Exception e) when (e is StoreUnavailableException or StoreException or OperationCanceledException)
        {
            return false;
        }
    }

    public Task<AppendResult> AppendAsync(IReadOnlyList<CollectedEvent> events, CancellationToken cancellationToken) =>
        AppendCoreAsync(events, null, cancellationToken);

    public Task<AppendResult> AppendAsync(IReadOnlyList<CollectedEvent> events, JournalMark mark, CancellationToken cancellationToken) =>
        AppendCoreAsync(events, mark, cancellationToken);

    public async Task<long?> GetJournalPositionAsync(string journalId, CancellationToken cancellationToken) =>
        JournalMark.Parse(await GetSettingAsync(JournalMark.SettingKey(journalId), cancellationToken));

    private async Task<AppendResult> AppendCoreAsync(IReadOnlyList<CollectedEvent> events, JournalMark? mark, CancellationToken cancellationToken)
    {
        if (events.Count == 0)
        {
            if (mark is { } only) { await RunAsync("record the journal position", connection => RecordJournalPositionAsync(connection, only, cancellationToken), cancellationToken); }
            return default;
        }

        // A pair twice in this list is stored once: the first occurrence wins, as in the embedded store.
        var unique = new Dictionary<(string Source, string MessageId), CollectedEvent>(events.Count);
        foreach (var e in events) { unique.TryAdd((e.SourceId, e.MessageId), e); }

        // In key order: the claim's probes and its COPY walk message_ids' primary key from one end to the other. (Every claim
        // runs under the resolution lock, so the order no longer matters for deadlocks between appends.)
        var keys = unique.Keys.ToArray();
        Array.Sort(keys, (a, b) =>
        {
            var bySource = string.CompareOrdinal(a.Source, b.Source);
            return bySource != 0 ? bySource : string.CompareOrdinal(a.MessageId, b.MessageId);
        });

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var stored = await RunAsync("append to events", connection => AppendOnceAsync(connection, events, unique, keys, mark, cancellationToken), cancellationToken);
                await PurgeIfDueAsync(cancellationToken);
                return new AppendResult(stored, events.Count - stored);
            }
            catch (StoreUnavailableException e) when (attempt < MaxConflictRetries && PostgresErrors.IsRetryableConflict(e.InnerException!))
            {
                // The transaction rolled back whole; another process won a race on the same messageIds. Try again.
            }
        }
    }

    private async Task<int> AppendOnceAsync(
        NpgsqlConnection connection,
        IReadOnlyList<CollectedEvent> events,
        Dictionary<(string Source, string MessageId), CollectedEvent> unique,
        (string Source, string MessageId)[] keys,
        JournalMark? mark,
        CancellationToken cancellationToken)
    {
        await _engineLock.WaitAsync(cancellationToken);
        try
        {
            return await AppendLockedAsync(connection, events, unique, keys, mark, cancellationToken);
        }
        finally
        {
            _engineLock.Release();
        }
    }

    private async Task<int> AppendLockedAsync(
        NpgsqlConnection connection,
        IReadOnlyList<CollectedEvent> events,
        Dictionary<(string Source, string MessageId), CollectedEvent> unique,
        (string Source, string MessageId)[] keys,
        JournalMark? mark,
        CancellationToken cancellationToken)
    {
        // First: one resolver at a time across processes, and everything the others committed is visible after it.
        await using var transaction = await BeginResolvingAsync(connection, cancellationToken);
        var fresh = await ClaimAsync(connection, unique, keys, cancellationToken);

        var stored = fresh.Count;
        if (stored > 0)
        {
            // In the order given, so seq follows arrival order within the batch.
            var sequenced = new List<(long Seq, CollectedEvent Event)>(stored);
            var first = await AllocateSeqsAsync(connection, stored, cancellationToken);
            foreach (var e in events)
            {
                if (fresh.Remove((e.SourceId, e.MessageId))) { sequenced.Add((first + sequenced.Count, e)); }
            }

            // Until the commit, the engine holds a batch the tables may never have: if anything fails, it is rebuilt.
            _engineStale = true;
            var processed = new ProcessedEvent[sequenced.Count];
            var resolved = ResolveInSlices(sequenced, processed);
            try
            {
                await CopyEventsAsync(connection, sequenced, processed, resolved, cancellationToken);
            }
            finally
            {
                // Never leave while the engine still works on this batch: a rebuild after a failure must not race it.
                await Task.WhenAll(resolved).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            await ExecuteAsync(connection, "UPDATE event_count SET events = events + $1", cancellationToken, (long)stored);

            await CopyProfileChangesAsync(connection, processed, "identity_changes", "trait_changes", cancellationToken);
            var audienceChanges = AudienceRows.All(processed).ToList();
            await CopyAudienceChangesAsync(connection, audienceChanges, cancellationToken);
            await WriteProfileStateAsync(connection, ProfileStateChanges.Of(processed, Engine), cancellationToken);
            if (mark is { } m) { await RecordJournalPositionAsync(connection, m, cancellationToken); }
            // Durable on return: synchronous_commit waits for the WAL flush. Should the connection die during COMMIT the
            // outcome is unknown and the caller answers 503; the client's resend is then dropped or stored by the dedup above
            // (and the engine, marked stale, is rebuilt from what was committed).
            await transaction.CommitAsync(cancellationToken);
            Volatile.Write(ref _appliedSeq, sequenced[^1].Seq);
            _engineStale = false;
            Announce(audienceChanges);
            Appended?.Invoke();
            return stored;
        }

        // Every event was a duplicate: nothing to store, but the journal position still moves on.
        if (mark is { } only) { await RecordJournalPositionAsync(connection, only, cancellationToken); }
        await transaction.CommitAsync(cancellationToken);
        return stored;
    }

    /// <summary>
    /// Claims the batch's (source, messageId) pairs and returns those that are new: never seen, or last seen before the
    /// dedup window. Called under the resolution lock, which every claim takes, so no other append (in this process or
    /// another) claims between the read and the write: the new pairs are copied in plainly, which costs PostgreSQL
    /// less than an upsert a row. Only the hourly purge runs beside it, and it removes only pairs past the window.
    /// </summary>
    private async Task<HashSet<(string, string)>> ClaimAsync(
        NpgsqlConnection connection,
        Dictionary<(string Source, string MessageId), CollectedEvent> unique,
        (string Source, string MessageId)[] keys,
        CancellationToken cancellationToken)
    {
        // Indexed like keys: when each pair was last seen, null when never.
        var lastSeen = new DateTimeOffset?[keys.Length];
        await using (var find = new NpgsqlCommand(FindMessageIds, connection))
        {
            find.Parameters.Add(new NpgsqlParameter { Value = keys.Select(k => k.Source).ToArray() });
            find.Parameters.Add(new NpgsqlParameter { Value = keys.Select(k => k.MessageId).ToArray() });
            await using var reader = await find.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) { lastSeen[reader.GetInt64(0) - 1] = reader.GetFieldValue<DateTimeOffset>(1); }
        }

        var fresh = new HashSet<(string, string)>(keys.Length);
        var added = new List<((string Source, string MessageId) Key, DateTimeOffset ReceivedAt)>(keys.Length);
        var renewed = new List<((string Source, string MessageId) Key, DateTimeOffset ReceivedAt)>();
        for (var i = 0; i < keys.Length; i++)
        {
            var receivedAt = unique[keys[i]].ReceivedAt.ToUniversalTime();
            if (lastSeen[i] is not { } last) { added.Add((keys[i], receivedAt)); }
            else if (last < receivedAt - _options.DedupWindow) { renewed.Add((keys[i], receivedAt)); }
            else { continue; }
            fresh.Add(keys[i]);
        }

        if (added.Count > 0)
        {
            await using var copy = await connection.BeginBinaryImportAsync(CopyMessageIds, cancellationToken);
            foreach (var (key, receivedAt) in added)
            {
                await copy.StartRowAsync(cancellationToken);
                await copy.WriteAsync(key.Source, NpgsqlDbType.Text, cancellationToken);
                await copy.WriteAsync(key.MessageId, NpgsqlDbType.Text, cancellationToken);
                await copy.WriteAsync(receivedAt, NpgsqlDbType.TimestampTz, cancellationToken);
            }

            await copy.CompleteAsync(cancellationToken);
        }

        if (renewed.Count > 0)
        {
            await ExecuteAsync(connection, RenewMessageIds, cancellationToken,
                renewed.Select(r => r.Key.Source).ToArray(), renewed.Select(r => r.Key.MessageId).ToArray(), renewed.Select(r => r.ReceivedAt).ToArray());
        }

        return fresh;
    }

    /// <summary>
    /// Resolves <paramref name="sequenced"/> in slices of <see cref="ResolveSlice"/> on the thread pool, in order, into
    /// <paramref name="processed"/>; slice k's task completes once its results are there (or fails with the engine's
    /// error, as do all after it). The engine's lock is taken per slice, so reads of profiles wait for a slice, not
    /// for the whole batch.
    /// </summary>
    private Task[] ResolveInSlices(List<(long Seq, CollectedEvent Event)> sequenced, ProcessedEvent[] processed)
    {
        var slices = new TaskCompletionSource[(sequenced.Count + ResolveSlice - 1) / ResolveSlice];
        for (var k = 0; k < slices.Length; k++) { slices[k] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously); }
        _ = Task.Run(() =>
        {
            var k = 0;
            try
            {
                for (; k < slices.Length; k++)
                {
                    var start = k * ResolveSlice;
                    var results = Engine.Process(sequenced.GetRange(start, Math.Min(ResolveSlice, sequenced.Count - start)));
                    for (var i = 0; i < results.Count; i++) { processed[start + i] = results[i]; }
                    slices[k].SetResult();
                }
            }
            catch (Exception e)
            {
                for (; k < slices.Length; k++) { slices[k].SetException(e); }
            }
        });
        return [.. slices.Select(slice => slice.Task)];
    }

    /// <summary>
    /// Copies the batch into <c>events</c> as the engine resolves it (<see cref="ResolveInSlices"/>): PostgreSQL
    /// inserts one slice while the engine resolves the next, instead of waiting for the whole batch.
    /// </summary>
    private static async Task CopyEventsAsync(
        NpgsqlConnection connection, List<(long Seq, CollectedEvent Event)> sequenced, ProcessedEvent[] processed, Task[] resolved, CancellationToken cancellationToken)
    {
        await using (var copy = await connection.BeginBinaryImportAsync(CopyEvents, cancellationToken))
        {
            for (var i = 0; i < sequenced.Count; i++)
            {
                if (i % ResolveSlice == 0) { await resolved[i / ResolveSlice]; }
                var (seq, e) = sequenced[i];
                await copy.StartRowAsync(cancellationToken);
                await copy.WriteAsync(seq, NpgsqlDbType.Bigint, cancellationToken);
                await copy.WriteAsync(e.MessageId, NpgsqlDbType.Text, cancellationToken);
                await copy.WriteAsync(e.SourceId, NpgsqlDbType.Text, cancellationToken);
                await copy.WriteAsync(e.Type.Name(), NpgsqlDbType.Text, cancellationToken);
                await WriteTextAsync(copy, e.Event, cancellationToken);
                await WriteTextAsync(copy, e.UserId, cancellationToken);
                await WriteTextAsync(copy, e.AnonymousId, cancellationToken);
                await WriteTextAsync(copy, e.GroupId, cancellationToken);
                await WriteTextAsync(copy, e.PreviousId, cancellationToken);
                await WriteTextAsync(copy, processed[i].ProfileId, cancellationToken);
                await copy.WriteAsync(e.Timestamp.ToUniversalTime(), NpgsqlDbType.TimestampTz, cancellationToken);
                await WriteTimeAsync(copy, e.OriginalTimestamp, cancellationToken);
                await WriteTimeAsync(copy, e.SentAt, cancellationToken);
                await copy.WriteAsync(e.ReceivedAt.ToUniversalTime(), NpgsqlDbType.TimestampTz, cancellationToken);
                await copy.WriteAsync(e.Raw.ToString(), NpgsqlDbType.Text, cancellationToken);
            }

            await copy.CompleteAsync(cancellationToken);
        }
    }

    private static Task<int> RecordJournalPositionAsync(NpgsqlConnection connection, JournalMark mark, CancellationToken cancellationToken) =>
        ExecuteAsync(connection, "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            cancellationToken, JournalMark.SettingKey(mark.JournalId), mark.Value);

    public async Task<EventPage> QueryAsync(EventQuery query, CancellationToken cancellationToken) =>
        await RunAsync("query events", async connection =>
        {
            await using var command = connection.CreateCommand();
            command.CommandText = EventReader.PageSql(query, value =>
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value });
                return $"${command.Parameters.Count}";
            });
            return await EventReader.ReadPageAsync(command, query.Limit, cancellationToken);
        }, cancellationToken);

    public async Task<AudiencePreview> PreviewAudienceAsync(
        AudienceCondition definition, Func<string, AudienceCondition?> segments, DateTimeOffset now, int sampleSize, CancellationToken cancellationToken)
    {
        var sql = AudienceQuery.Preview(PostgresAudienceDialect.Instance, definition, Engine.ComputedDefinitions, segments, now, sampleSize);
        return await RunAsync("preview audience", async connection =>
        {
            await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
            await ExecuteAsync(connection, PostgresAudienceDialect.Instance.Prelude!, cancellationToken);
            await using var command = Command(connection, sql.Text, [.. sql.Parameters]);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            return await AudiencePreview.ReadAsync(reader, sampleSize, cancellationToken);
        }, cancellationToken);
    }

    public async IAsyncEnumerable<string> ListAudienceMembersAsync(
        AudienceCondition definition, Func<string, AudienceCondition?> segments, DateTimeOffset now, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var sql = ExplainAudienceSql(definition, segments, now);
        // One snapshot for the whole stream: the connection and its transaction live as long as the enumeration.
        NpgsqlConnection? connection = null;
        NpgsqlTransaction transaction;
        NpgsqlCommand command;
        NpgsqlDataReader reader;
        try
        {
            connection = await _dataSource.OpenConnectionAsync(cancellationToken);
            transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
            await ExecuteAsync(connection, PostgresAudienceDialect.Instance.Prelude!, cancellationToken);
            command = Command(connection, sql.Text, [.. sql.Parameters]);
            reader = await command.ExecuteReaderAsync(cancellationToken);
        }
        catch (Exception e) when (IsDatabaseError(e))
        {
            if (connection is not null) { await connection.DisposeAsync(); }
            throw Translate(e, sql.Text);
        }

        await using (connection)
        await using (transaction)
        await using (command)
        await using (reader)
        {
            while (await reader.ReadAsync(cancellationToken)) { yield return reader.GetString(0); }
        }
    }

    public AudienceSql ExplainAudienceSql(AudienceCondition definition, Func<string, AudienceCondition?> segments, DateTimeOffset now) =>
        AudienceQuery.Members(PostgresAudienceDialect.Instance, definition, Engine.ComputedDefinitions, segments, now);

    public async Task<StoreStats> GetStatsAsync(CancellationToken cancellationToken) =>
        await RunAsync("stats", async connection =>
        {
            var events = await ScalarAsync<long>(connection, "SELECT events FROM event_count", cancellationToken);
            var sources = await ScalarAsync<long>(connection, "SELECT count(*) FROM sources", cancellationToken);
            var (profiles, identifiers, merges) = Engine.Counts();
            return new StoreStats(events, sources, profiles, identifiers, merges, Segments: Engine.Audiences.Count);
        }, cancellationToken);

    public async Task<Source> CreateSourceAsync(string name, string workspace, string writeKey, CancellationToken cancellationToken)
    {
        var source = new Source("src_" + Guid.CreateVersion7().ToString("N")[..20], name, workspace, writeKey, DateTimeOffset.UtcNow, null);
        await RunAsync("create source", connection => ExecuteAsync(
            connection,
            "INSERT INTO sources (id, name, workspace, write_key, created_at) VALUES ($1, $2, $3, $4, $5)",
            cancellationToken, source.Id, source.Name, source.Workspace, source.WriteKey, source.CreatedAt), cancellationToken);
        Engine.KnowSource(source.Id, source.Name);
        return source;
    }

    public Task<IReadOnlyList<Source>> ListSourcesAsync(CancellationToken cancellationToken) =>
        QuerySourcesAsync("ORDER BY created_at, id", null, cancellationToken);

    public async Task<Source?> GetSourceAsync(string id, CancellationToken cancellationToken) =>
        First(await QuerySourcesAsync("WHERE id = $1", id, cancellationToken));

    public async Task<Source?> FindSourceByWriteKeyAsync(string writeKey, CancellationToken cancellationToken) =>
        First(await QuerySourcesAsync("WHERE write_key = $1", writeKey, cancellationToken));

    public async Task<bool> RevokeSourceAsync(string id, CancellationToken cancellationToken) =>
        await RunAsync("revoke source", async connection =>
        {
            // Revoking twice keeps the first time; the answer only says whether the source exists.
            await ExecuteAsync(connection, "UPDATE sources SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", cancellationToken, id);
            return await ScalarAsync<bool>(connection, "SELECT EXISTS (SELECT 1 FROM sources WHERE id = $1)", cancellationToken, id);
        }, cancellationToken);

    public async Task<string?> GetSettingAsync(string key, CancellationToken cancellationToken) =>
        await RunAsync("read setting", connection => ScalarAsync<string?>(connection, "SELECT value FROM settings WHERE key = $1", cancellationToken, key), cancellationToken);

    public async Task<string> SetSettingIfAbsentAsync(string key, string value, CancellationToken cancellationToken) =>
        await RunAsync("set setting", async connection =>
        {
            // Two statements on purpose: the SELECT takes a fresh snapshot, so it sees a value another process just committed.
            await ExecuteAsync(connection, "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", cancellationToken, key, value);
            return (await ScalarAsync<string?>(connection, "SELECT value FROM settings WHERE key = $1", cancellationToken, key))!;
        }, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await StopCatchUpLoopAsync();
        await _dataSource.DisposeAsync();
    }

    private static Source? First(IReadOnlyList<Source> sources) => sources.Count > 0 ? sources[0] : null;

    private async Task PurgeIfDueAsync(CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow.UtcTicks;
        var due = Interlocked.Read(ref _nextPurgeTicks);
        if (now < due || Interlocked.CompareExchange(ref _nextPurgeTicks, now + _options.PurgeInterval.Ticks, due) != due) { return; }
        try
        {
            await RunAsync("purge message_ids", connection => ExecuteAsync(
                connection, "DELETE FROM message_ids WHERE received_at < now() - $1::interval", cancellationToken, _options.DedupWindow), cancellationToken);
        }
        catch (Exception e) when (e is StoreException or StoreUnavailableException)
        {
            // Only space is at stake (expired pairs are recognised on insert); the events were stored. Try again on the next append.
            Interlocked.Exchange(ref _nextPurgeTicks, 0);
        }
    }

    private async Task<IReadOnlyList<Source>> QuerySourcesAsync(string tail, string? parameter, CancellationToken cancellationToken) =>
        await RunAsync("read sources", async connection =>
        {
            await using var command = new NpgsqlCommand($"SELECT {SourceRows.Columns} FROM sources {tail}", connection);
            if (parameter is not null) { command.Parameters.Add(new NpgsqlParameter { Value = parameter }); }
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            var sources = new List<Source>();
            while (await reader.ReadAsync(cancellationToken))
            {
                sources.Add(SourceRows.Read(reader));
            }

            return (IReadOnlyList<Source>)sources;
        }, cancellationToken);

    /// <summary>Runs <paramref name="work"/> on a pooled connection; every database error leaves through <see cref="PostgresErrors"/>.</summary>
    private async Task<T> RunAsync<T>(string what, Func<NpgsqlConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
            return await work(connection);
        }
        catch (Exception e) when (IsDatabaseError(e))
        {
            throw Translate(e, what);
        }
    }

    private static bool IsDatabaseError(Exception e) =>
        e is NpgsqlException or TimeoutException || e is InvalidOperationException && e.InnerException is NpgsqlException;

    private Exception Translate(Exception e, string what)
    {
        var error = e is InvalidOperationException ? e.InnerException! : e;
        if (PostgresErrors.IsConnectionLoss(error))
        {
            // The server went away (restart, failover): the pool's idle connections are dead too; drop them all.
            _dataSource.Clear();
        }

        return PostgresErrors.Translate(error, (error as PostgresException)?.BatchCommand?.CommandText ?? what, _settings);
    }

    private static async Task<int> ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params object?[] parameters)
    {
        await using var command = Command(connection, sql, parameters);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params object?[] parameters)
    {
        await using var command = Command(connection, sql, parameters);
        var value = await command.ExecuteScalarAsync(cancellationToken);
        return value is null or DBNull ? default! : (T)Convert.ChangeType(value, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static NpgsqlCommand Command(NpgsqlConnection connection, string sql, object?[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection);
        foreach (var p in parameters) { command.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value }); }
        return command;
    }

    private static Task WriteTextAsync(NpgsqlBinaryImporter copy, string? value, CancellationToken cancellationToken) =>
        value is null ? copy.WriteNullAsync(cancellationToken) : copy.WriteAsync(value, NpgsqlDbType.Text, cancellationToken);

    private static Task WriteTimeAsync(NpgsqlBinaryImporter copy, DateTimeOffset? value, CancellationToken cancellationToken) =>
        value is { } time ? copy.WriteAsync(time.ToUniversalTime(), NpgsqlDbType.TimestampTz, cancellationToken) : copy.WriteNullAsync(cancellationToken);

    /// <summary>The first schema of a search path, unquoted; null for none or <c>$user</c> (then PostgreSQL's own default applies).</summary>
    private static string? SchemaOf(string? searchPath)
    {
        var first = searchPath?.Split(',')[0].Trim();
        if (string.IsNullOrEmpty(first) || first == "$user") { return null; }
        // As PostgreSQL reads it: a quoted name is taken as written, an unquoted one folds to lower case.
        return first is ['"', .., '"'] ? first[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal) : first.ToLowerInvariant();
    }

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
