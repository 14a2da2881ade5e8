using System.Runtime.CompilerServices;
using DuckDB.NET.Data;
using Tessera.Core.Audiences;
using Tessera.Core.Collection;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Storage.Audiences;
using Tessera.Storage.Audiences.Dialects;
using Tessera.Storage.Events;
using Tessera.Storage.Journal;
using Tessera.Storage.Profiles;
using Tessera.Storage.Sources;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// The embedded store: one DuckDB file. One process owns the file (DuckDB locks it); all writes go through one
/// connection under <see cref="_writeLock"/>, reads use their own connections to the same database. Each append
/// runs the fresh events through the <see cref="ProfileEngine"/> and commits the events, the identity log rows and
/// the trait changes in one transaction.
/// </summary>
public sealed partial class DuckDbStore(DuckDbStoreOptions options, ProfileEngine engine) : ITesseraStore
{
    private ProfileEngine _engine = engine;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly List<(CollectedEvent Event, UInt128 Key)> _fresh = [];
    private readonly HashSet<UInt128> _inThisAppend = [];
    // Its older ids in files in the store file's directory (made at open; unlinked: a crash leaves none;
    // docs/architecture.md, "Dedup").
    private readonly MessageIdIndex _messageIds = new(options.DedupWindow, DirectoryOf(options.Path), options.DedupRecentSlots);
    private readonly RawCodec _raw = new(options.RawDictionarySamples, options.RawDictionaryEvery);
    // The event_properties rows of the chunk being staged, typed under _writeLock (StagedEvents copies them).
    private readonly PropertyPacker _properties = new();

    // A file kept at a schema before the compressed raw column (tests building an older release's file) takes text.
    private bool RawAsText => options.MigrateUpTo < DuckDbMigrations.CompressedRawVersion;
    private readonly DuckDbCommitMetrics _metrics = new(() => WalSizeOf(options));
    private DuckDBConnection? _writer;
    private long _lastSeq;
    private long _pendingTraitRows;

    private WritebackPacer? _pacer;
    private QueryThreads? _queryThreads;

    /// <summary>DuckDB's threads raised for a parallel query (<see cref="QueryThreads"/>); nothing before the store is open.</summary>
    private QueryThreads.Lease ParallelQuery() => _queryThreads?.Enter() ?? default;

    /// <summary>Tests only: whether DuckDB runs with all its threads, and what DuckDB says its threads are.</summary>
    internal async Task<(bool Raised, long Setting)> QueryThreadsForTestsAsync(CancellationToken cancellationToken) =>
        (_queryThreads?.Raised ?? false, await ScalarAsync<long>("SELECT current_setting('threads')::BIGINT", cancellationToken));

    /// <summary>The store file's paced writeback, while open; null when it is off (<see cref="DuckDbStoreOptions.WritebackInterval"/>) or not on Linux.</summary>
    internal WritebackPacer? Pacer => _pacer;

    public string Kind => "duckdb";

    public string Path => options.Path;

    public ProfileEngine Engine => _engine;

    /// <summary>The committer's instruments (<see cref="DuckDbCommitMetrics"/>).</summary>
    internal System.Diagnostics.Metrics.Meter Meter => _metrics.Meter;

    public event Action? Appended;

    /// <summary>Tests only: the dedup index, to see whether its runs in files were reached.</summary>
    internal MessageIdIndex MessageIds => _messageIds;

    private static string DirectoryOf(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        return System.IO.Path.GetDirectoryName(full) ?? full;
    }

    public async Task OpenAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(DirectoryOf(options.Path));

        var connection = new DuckDBConnection($"Data Source={options.Path}");
        try
        {
            await connection.OpenAsync(cancellationToken);
        }
        catch (DuckDBException e)
        {
            await connection.DisposeAsync();
            throw DuckDbErrors.Translate(e, null, options.Path);
        }

        _writer = connection;
        _pacer = WritebackPacer.Start(options.Path, options.WritebackInterval);
        _metrics.ObserveMemory(() => Volatile.Read(ref _stagedEvents), () => Volatile.Read(ref _stagedBytes), () => _messageIds.Count, () => _messageIds.Bytes, () => _messageIds.FileBytes, DuckDbMemory);
        _queryThreads = new QueryThreads(options.Threads, SetThreads, options.Time);
        StartCommitter();
        await ExecuteAsync(
            $"SET memory_limit = '{options.MemoryLimitMb}MB'; SET threads = {_queryThreads.Initial}; SET checkpoint_threshold = '{options.CheckpointThresholdMb}MB';",
            cancellationToken);
        // The start's migrations, dedup load and profile restore read whole tables: on all of DuckDB's threads, lowered
        // by the committer a while after the store is open (QueryThreads).
        using var parallel = ParallelQuery();
        await MigrateAsync(cancellationToken);
        _lastSeq = await ScalarAsync<long>("SELECT coalesce(max(seq), 0) FROM events", cancellationToken);
        RegisterRawFunction(connection);
        await LoadRawDictionariesAsync(cancellationToken);
        NoteCommitted(_lastSeq, 0);
        await LoadMessageIdsAsync(cancellationToken);
        foreach (var source in await ListSourcesAsync(cancellationToken)) { _engine.KnowSource(source.Id, source.Name); }
        // A store kept at an older schema (tests building an old release's file) has no profile tables to restore from.
        if (options.MigrateUpTo is { } upTo && upTo < DuckDbMigrations.Steps[^1].Version) { return; }
        await RestoreProfilesAsync(cancellationToken);
        await ExecuteOnAsync(connection, """
            CREATE TEMP TABLE profile_merges_stage (merged VARCHAR, profile_id VARCHAR);
            """, cancellationToken);
        _pendingTraitRows = await ScalarAsync<long>("SELECT count(*) FROM profile_trait_updates", cancellationToken);
        await WriteProfileStateIfMissingAsync(cancellationToken);
        await BackfillEventPropertiesAsync(cancellationToken);
        await DetectMergedIdsAsync(cancellationToken);
    }

    /// <summary>
    /// <c>tessera_raw(raw)</c>: a message's JSON text in SQL (audience conditions on paths the typed properties do not
    /// hold, activation's consent scan). Registered once per database; every connection to it sees it.
    /// </summary>
    private void RegisterRawFunction(DuckDBConnection connection)
    {
        var codec = _raw;
        connection.RegisterScalarFunction<byte[], string>("tessera_raw", (readers, writer, count) =>
        {
            var input = readers[0];
            for (ulong i = 0; i < count; i++)
            {
                if (!input.IsValid(i))
                {
                    writer.WriteNull(i);
                    continue;
                }

                using var stream = input.GetValue<UnmanagedMemoryStream>(i);
                writer.WriteValue(codec.DecodeToString(stream), i);
            }
        }, new ScalarFunctionOptions { IsPureFunction = true });
    }

    /// <summary>The raw JSON's dictionaries, as committed (at open, and after a failed commit took back staged ones).</summary>
    private async Task LoadRawDictionariesAsync(CancellationToken cancellationToken)
    {
        if (RawAsText) { return; }
        using var connection = OpenReader();
        using var command = Command(connection, "SELECT id, first_seq, trained_at, samples, dictionary FROM raw_dictionaries ORDER BY id", []);
        var dictionaries = new List<RawDictionary>();
        using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                using var bytes = reader.GetStream(4);
                dictionaries.Add(new RawDictionary(reader.GetInt32(0), reader.GetInt64(1), reader.GetFieldValue<DateTimeOffset>(2), reader.GetInt32(3), RawCodec.Bytes(bytes)));
            }
        }

        _raw.Load(dictionaries, _lastSeq);
    }

    /// <summary>
    /// A store upgraded to schema 5 has its profile state tables empty: they are written once from the engine, which
    /// the identity log and trait history just rebuilt.
    /// </summary>
    private async Task WriteProfileStateIfMissingAsync(CancellationToken cancellationToken)
    {
        if (_engine.Counts().Profiles == 0 || await ScalarAsync<long>("SELECT count(*) FROM profile_ids", cancellationToken) > 0) { return; }
        var writer = _writer!;
        using var transaction = writer.BeginTransaction();
        using (var tables = new TableAppenders(writer)) { WriteProfileState(tables, _engine.StateSnapshot()); }
        transaction.Commit();
    }

    public Task<bool> IsAvailableAsync(CancellationToken cancellationToken) => Task.FromResult(_writer is not null);

    public Task<AppendResult> AppendAsync(IReadOnlyList<CollectedEvent> events, CancellationToken cancellationToken) =>
        AppendCommittedAsync(events, null, cancellationToken);

    public Task<AppendResult> AppendAsync(IReadOnlyList<CollectedEvent> events, JournalMark mark, CancellationToken cancellationToken) =>
        AppendCommittedAsync(events, mark, cancellationToken);

    /// <summary>Stages, then waits for the commit: an append that answers only once the store holds it.</summary>
    private async Task<AppendResult> AppendCommittedAsync(IReadOnlyList<CollectedEvent> events, JournalMark? mark, CancellationToken cancellationToken)
    {
        var staged = await StageCoreAsync(events, mark, cancellationToken);
        await staged.Committed;
        return staged.Result;
    }

    public Task<StagedAppend> StageAsync(IReadOnlyList<CollectedEvent> events, JournalMark mark, CancellationToken cancellationToken) =>
        StageCoreAsync(events, mark, cancellationToken);

    /// <summary>The committer takes everything staged since its last commit into one transaction.</summary>
    public bool JoinsStagedAppends => true;

    public async Task<long?> GetJournalPositionAsync(string journalId, CancellationToken cancellationToken) =>
        JournalMark.Parse(await GetSettingAsync(JournalMark.SettingKey(journalId), cancellationToken));

    /// <summary>
    /// Dedup, seqs and the engine under the write lock, then the rows go to the committer (DuckDbStore.Commits.cs).
    /// After a failed commit, the first call restores the state from the file; with a journal mark it then throws
    /// <see cref="StoreRewoundException"/> (the indexer must read again from what was committed), without one (a
    /// direct append, whose failed callers were told) it goes on.
    /// </summary>
    private async Task<StagedAppend> StageCoreAsync(IReadOnlyList<CollectedEvent> events, JournalMark? mark, CancellationToken cancellationToken)
    {
        if (_writer is null) { throw new InvalidOperationException("The store is not open."); }
        await WaitForRoomAsync(cancellationToken);
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            var fault = Volatile.Read(ref _fault);
            await RecoverFromFaultAsync();
            if (_rewindRequired && mark is { } rewound)
            {
                _rewindRequired = false;
                throw new StoreRewoundException(CommittedPosition(rewound.JournalId), fault ?? new InvalidOperationException("an earlier commit failed"));
            }

            var now = DateTimeOffset.UtcNow;
            _messageIds.SweepIfDue(now);
            // Kept from chunk to chunk (under the write lock): made anew, a chunk of a few thousand events grew them
            // into the large object heap each time (docs/benchmarks.md, "The request path as bytes, and the workstation GC").
            var fresh = _fresh;
            var inThisAppend = _inThisAppend;
            fresh.Clear();
            inThisAppend.Clear();
            foreach (var e in events)
            {
                var key = MessageIdIndex.Key(e.SourceId, e.MessageId);
                // Judged by receipt times, as PostgreSQL's claim is: a backlog or a replay dedups as it would have live.
                if (!_messageIds.Contains(key, e.ReceivedAt) && inThisAppend.Add(key)) { fresh.Add((e, key)); }
            }

            if (fresh.Count == 0)
            {
                // Every event was a duplicate: nothing to store, but the journal position still moves on (in order).
                var committed = mark is { } m ? Stage(_ => { }, 0, 0, 0, [], false, m) : Task.CompletedTask;
                return new StagedAppend(new AppendResult(0, events.Count), committed);
            }

            var sequenced = new (long Seq, CollectedEvent Event)[fresh.Count];
            for (var i = 0; i < fresh.Count; i++) { sequenced[i] = (_lastSeq + 1 + i, fresh[i].Event); }
            var processed = ProcessParsingOnce(sequenced);
            NoteConsent(sequenced);
            var changes = NumberChanges(AudienceRows.All(processed));
            var state = ProfileStateChanges.Of(processed, _engine);
            // Raised before the commit (a query that raced it runs again): see DuckDbStore.EventProperties.cs.
            if (state.Merges.Count > 0) { _mayHaveMergedIds = true; }
            var fold = _pendingTraitRows + state.Traits.Count >= options.TraitFoldRows;
            _pendingTraitRows = fold ? 0 : _pendingTraitRows + state.Traits.Count;
            _lastSeq += fresh.Count;
            var bytes = 0L;
            foreach (var (e, key) in fresh)
            {
                _messageIds.Add(key, e.ReceivedAt);
                bytes += e.Raw.Utf8Length;
            }

            var version = sequenced[^1].Seq;
            // Packed (and the raw JSON compressed) here, on the caller's thread, not on the committer's; a dictionary
            // trained meanwhile is committed with the first rows it compresses. What waits for the commit is the packed
            // events and the engine's changes, not the messages (StagedEvents).
            var dictionary = RawAsText ? null : _raw.TakeTrained(sequenced[0].Seq);
            var packed = StagedEvents.Pack(sequenced, processed, RawAsText ? null : _raw, _properties);
            var changed = processed.Where(p => p.Changes.Count > 0 || p.Traits.Count > 0).ToArray();
            var task = Stage(tables =>
            {
                try
                {
                    if (dictionary is not null) { AppendRawDictionary(tables, dictionary); }
                    AppendEvents(tables, packed);
                    AppendEventProperties(tables, packed);
                }
                finally
                {
                    packed.Release();
                }

                AppendProfileChanges(tables, changed);
                AppendAudienceChanges(tables, changes);
                AppendProfileState(tables, state, version);
                if (fold) { FoldTraitUpdates(tables); }
            }, fresh.Count, bytes, version, changes, true, mark);
            return new StagedAppend(new AppendResult(fresh.Count, events.Count - fresh.Count), task);
        }
        finally
        {
            // The events are not kept alive by the scratch list until the next chunk.
            _fresh.Clear();
            _writeLock.Release();
        }
    }

    /// <summary>
    /// The engine's results for <paramref name="sequenced"/>, and each event's property rows typed in
    /// <see cref="_properties"/> from the engine's own parse of its message while it holds it (one parse for both).
    /// </summary>
    /// <remarks>
    /// A method of its own for its closure's sake: C# puts the locals that the lambdas of one scope capture in one
    /// object, so this callback written in <see cref="StageCoreAsync"/> made the commit's lambda hold the chunk's
    /// messages (<c>sequenced</c>) until its commit: 20-40 MB more flat out (docs/benchmarks.md, "One parse, and what
    /// a lambda kept").
    /// </remarks>
    private IReadOnlyList<ProcessedEvent> ProcessParsingOnce((long Seq, CollectedEvent Event)[] sequenced)
    {
        _properties.Begin(sequenced.Length);
        return _engine.Process(sequenced, (i, message) => _properties.Pack(i, named: sequenced[i].Event.Event is not null, message));
    }

    private static void AppendRawDictionary(TableAppenders tables, RawDictionary d) =>
        tables.For("raw_dictionaries").CreateRow()
            .AppendValue(d.Id).AppendValue(d.FirstSeq).AppendValue(d.TrainedAt).AppendValue(d.Samples).AppendValue(d.Bytes)
            .EndRow();

    /// <summary>The events' rows, from their packed form (their raw value as it is stored: compressed, or the text).</summary>
    private static void AppendEvents(TableAppenders tables, StagedEvents events)
    {
        var appender = tables.For("events");
        var rows = 0;
        foreach (var e in events)
        {
            rows++;
            appender.CreateRow()
                .AppendValue(e.Seq)
                .AppendText(e.MessageId)
                .AppendText(e.SourceId)
                .AppendValue(e.Type.Name())
                .AppendText(e.Event)
                .AppendText(e.UserId)
                .AppendText(e.AnonymousId)
                .AppendText(e.GroupId)
                .AppendText(e.PreviousId)
                .AppendText(e.ProfileId)
                .AppendValue(e.Timestamp)
                .AppendValue(e.OriginalTimestamp)
                .AppendValue(e.SentAt)
                .AppendValue(e.ReceivedAt)
                .AppendUtf8(e.Raw.Span)
                .EndRow();
        }

        tables.Counted("events", rows);
    }

    private static void AppendProfileChanges(TableAppenders tables, IReadOnlyList<ProcessedEvent> processed, string identityTable = "identity_changes", string traitTable = "trait_changes")
    {
        // Each appender looked up at its table's first row, so a table without rows gets none.
        DuckDBAppender? identity = null, traits = null;
        foreach (var p in processed)
        {
            foreach (var c in p.Changes)
            {
                (identity ??= tables.For(identityTable)).CreateRow()
                    .AppendValue(c.Seq).AppendValue(c.Ordinal).AppendValue(c.Kind.ToString())
                    .AppendValue(c.ProfileId).AppendValue(c.OtherProfileId)
                    .AppendValue(c.Identifier?.Type).AppendValue(c.Identifier?.Value)
                    .AppendValue(c.At).AppendValue(c.Cause).AppendValue(c.Detail)
                    .AppendValue(ProfileRows.IdentifiersJson(c.Identifiers))
                    .EndRow();
            }

            foreach (var t in p.Traits)
            {
                (traits ??= tables.For(traitTable)).CreateRow()
                    .AppendValue(t.Value.Seq).AppendValue(t.ProfileId).AppendValue(t.Name)
                    .AppendValue(t.Value.Value?.ToJsonString()).AppendValue(t.Value.At).AppendValue(t.Value.SourceId)
                    .EndRow();
            }
        }
    }

    /// <summary>
    /// Brings the profile state tables up to date with one append, inside its transaction: new ids appended, merged ids
    /// (and every id that pointed at them) repointed in one update, links appended, touched profiles' traits upserted
    /// through a staging table. Merged-away profiles' trait rows stay behind: audiences only read live profiles.
    /// </summary>
    private static void AppendProfileState(TableAppenders tables, ProfileStateChanges changes, long version)
    {
        if (changes.IsEmpty) { return; }
        if (changes.Created.Count > 0)
        {
            var ids = tables.For("profile_ids");
            foreach (var id in changes.Created) { ids.CreateRow().AppendValue(id).AppendValue(id).EndRow(); }
        }

        if (changes.Merges.Count > 0)
        {
            var merges = tables.For("profile_merges_stage");
            foreach (var (merged, live) in changes.Merges) { merges.CreateRow().AppendValue(merged).AppendValue(live).EndRow(); }
            Execute(tables.Connection, """
                UPDATE profile_ids SET profile_id = s.profile_id FROM profile_merges_stage s WHERE profile_ids.profile_id = s.merged;
                DELETE FROM profile_merges_stage;
                """);
        }

        AppendIdentifiers(tables, changes.Links);
        AppendTraits(tables, "profile_trait_updates", changes.Traits, version);
    }

    /// <summary>
    /// Moves the newest value of each (profile, trait) in <c>profile_trait_updates</c> into <c>profile_traits</c>, inside
    /// the caller's transaction. Audiences read both until then (<c>DuckDbAudienceDialect.CurrentTraits</c>).
    /// </summary>
    private static void FoldTraitUpdates(TableAppenders tables) => Execute(tables.Connection, """
        INSERT OR REPLACE INTO profile_traits
            SELECT profile_id, name, value, kind, text, num, instant FROM profile_trait_updates
            QUALIFY row_number() OVER (PARTITION BY profile_id, name ORDER BY version DESC) = 1;
        DELETE FROM profile_trait_updates;
        """);

    /// <summary>Replaces the profile state tables' contents with <paramref name="snapshot"/>, on a connection inside a transaction.</summary>
    private static void WriteProfileState(TableAppenders tables, ProfileStateSnapshot snapshot)
    {
        Execute(tables.Connection, "DELETE FROM profile_ids; DELETE FROM profile_identifiers; DELETE FROM profile_trait_updates;");
        RecreateEmpty(tables.Connection, "profile_traits");
        var ids = tables.For("profile_ids");
        foreach (var (id, live) in snapshot.ProfileIds) { ids.CreateRow().AppendValue(id).AppendValue(live).EndRow(); }
        AppendIdentifiers(tables, snapshot.Identifiers);
        AppendTraits(tables, "profile_traits", [.. snapshot.Traits.Select(t => TraitRow.Of(t.ProfileId, t.Name, t.Value.Value))]);
    }

    /// <summary>
    /// Empties <paramref name="table"/> by dropping it and creating it again from its own definition, inside the
    /// caller's transaction. For a table with a primary key this is the fast way: a DELETE of every row takes each key
    /// out of the index one by one (8.4 s for profile_traits' 400,000 rows, the largest part of applying a re-resolve).
    /// </summary>
    private static void RecreateEmpty(DuckDBConnection connection, string table)
    {
        string definition;
        using (var read = Command(connection, "SELECT sql FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' AND table_name = $1", [table]))
        {
            definition = read.ExecuteScalar() as string ?? throw new InvalidOperationException($"The table {table} is missing.");
        }

        Execute(connection, $"DROP TABLE {table}; {definition}");
    }

    private static void AppendIdentifiers(TableAppenders tables, IReadOnlyList<(string ProfileId, Identifier Identifier)> links)
    {
        if (links.Count == 0) { return; }
        var identifiers = tables.For("profile_identifiers");
        foreach (var (profileId, identifier) in links)
        {
            identifiers.CreateRow().AppendValue(profileId).AppendValue(identifier.Type).AppendValue(identifier.Value).EndRow();
        }
    }

    private static void AppendTraits(TableAppenders tables, string table, IReadOnlyList<TraitRow> rows, long? version = null)
    {
        if (rows.Count == 0) { return; }
        var traits = tables.For(table);
        foreach (var t in rows)
        {
            var row = traits.CreateRow()
                .AppendValue(t.ProfileId).AppendValue(t.Name).AppendValue(t.Json).AppendValue(t.Kind).AppendValue(t.Text)
                .AppendValue(t.Number).AppendValue(t.Instant);
            if (version is { } v) { row.AppendValue(v); }
            row.EndRow();
        }
    }

    private static void Execute(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public async Task<IReadOnlyList<IdentityChange>> GetIdentityChangesAsync(IReadOnlyCollection<string> profileIds, CancellationToken cancellationToken)
    {
        if (profileIds.Count == 0) { return []; }
        var ids = profileIds.ToArray();
        var placeholders = string.Join(", ", ids.Select((_, i) => $"${i + 1}"));
        return await ReadAllAsync(
            $"SELECT {ProfileRows.IdentityColumns} FROM identity_changes WHERE profile_id IN ({placeholders}) OR other_profile_id IN ({placeholders}) ORDER BY seq, ordinal",
            ProfileRows.ReadIdentity, cancellationToken, ids);
    }

    public async Task<IReadOnlyList<TraitChange>> GetTraitHistoryAsync(IReadOnlyCollection<string> profileIds, CancellationToken cancellationToken)
    {
        if (profileIds.Count == 0) { return []; }
        var ids = profileIds.ToArray();
        var placeholders = string.Join(", ", ids.Select((_, i) => $"${i + 1}"));
        return await ReadAllAsync($"SELECT {ProfileRows.TraitColumns} FROM trait_changes WHERE profile_id IN ({placeholders}) ORDER BY seq", ProfileRows.ReadTrait, cancellationToken, ids);
    }

    private async Task RestoreProfilesAsync(CancellationToken cancellationToken)
    {
        _engine.UseSeparations(await ReadAllAsync("SELECT id_type, id_value, apart_from, occurred_at, reason FROM identity_separations ORDER BY occurred_at", ProfileRows.ReadSeparation, cancellationToken));
        // In chunks, so a store with millions of rows is not held in memory twice.
        await ReadInChunksAsync($"SELECT {ProfileRows.IdentityColumns} FROM identity_changes WHERE kind IN ('Created', 'Linked', 'Merged') ORDER BY seq, ordinal",
            ProfileRows.ReadIdentity, chunk => _engine.Restore(chunk, []), cancellationToken);
        await ReadInChunksAsync($"SELECT {ProfileRows.TraitColumns} FROM trait_changes ORDER BY seq", ProfileRows.ReadTrait, chunk => _engine.Restore([], chunk), cancellationToken);
        foreach (var definition in await ListComputedTraitsAsync(cancellationToken)) { _engine.DefineComputed(definition); }
        await BackfillComputedAsync(null, cancellationToken);
        await RestoreAudiencesAsync(_engine, cancellationToken);
    }

    /// <summary>Feeds the stored events that computed traits read (all of them, or one definition's) to the engine.</summary>
    private async Task BackfillComputedAsync(ComputedTraitDefinition? only, CancellationToken cancellationToken)
    {
        var names = (only is null ? _engine.ComputedDefinitions : [only]).Select(d => d.Event).Distinct().ToArray();
        if (names.Length == 0) { return; }
        var placeholders = string.Join(", ", names.Select((_, i) => $"${i + 1}"));
        var rows = await ReadAllAsync(
            $"SELECT {EventReader.Columns} FROM events WHERE profile_id IS NOT NULL AND event IN ({placeholders}) ORDER BY seq",
            r => EventReader.Read(r, _raw), cancellationToken, names);
        _engine.Backfill(rows.Select(r => (r.ProfileId!, r.Message)), only);
    }

    public async Task<IReadOnlyList<ComputedTraitDefinition>> ListComputedTraitsAsync(CancellationToken cancellationToken) =>
        await ReadAllAsync("SELECT definition FROM computed_traits ORDER BY created_at", r => ComputedTraitJson.Read(r.GetString(0)), cancellationToken);

    public async Task SaveComputedTraitAsync(ComputedTraitDefinition definition, CancellationToken cancellationToken)
    {
        // Under the write lock, so no event slips between the backfill and the live updates.
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            await DrainCommitsAsync();
            await ExecuteAsync("INSERT OR REPLACE INTO computed_traits VALUES ($1, $2, $3)", cancellationToken, definition.Name, ComputedTraitJson.Write(definition), DateTimeOffset.UtcNow);
            _engine.DefineComputed(definition);
            await BackfillComputedAsync(definition, cancellationToken);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task<bool> DeleteComputedTraitAsync(string name, CancellationToken cancellationToken)
    {
        var deleted = await ExecuteAsync("DELETE FROM computed_traits WHERE name = $1", cancellationToken, name) > 0;
        if (deleted) { _engine.RemoveComputed(name); }
        return deleted;
    }

    public async Task<GraphComparison> ReresolveAsync(ProfileEngine fresh, bool apply, IdentitySeparation? addSeparation, CancellationToken cancellationToken)
    {
        if (!apply) { return await ReresolveCoreAsync(fresh, apply, addSeparation, cancellationToken); }
        // The swap's one transaction holds the whole rebuilt identity log, trait history and profile state.
        await ExecuteAsync($"SET memory_limit = '{Math.Max(options.ReresolveMemoryLimitMb, options.MemoryLimitMb)}MB'", cancellationToken);
        try
        {
            return await ReresolveCoreAsync(fresh, apply, addSeparation, cancellationToken);
        }
        finally
        {
            await ExecuteAsync($"SET memory_limit = '{options.MemoryLimitMb}MB'", CancellationToken.None);
        }
    }

    private async Task<GraphComparison> ReresolveCoreAsync(ProfileEngine fresh, bool apply, IdentitySeparation? addSeparation, CancellationToken cancellationToken)
    {
        var writer = _writer ?? throw new InvalidOperationException("The store is not open.");
        using var rebuild = OpenReader();
        if (apply)
        {
            await ExecuteOnAsync(rebuild, """
                CREATE OR REPLACE TEMP TABLE identity_changes_rebuild AS SELECT * FROM identity_changes LIMIT 0;
                CREATE OR REPLACE TEMP TABLE trait_changes_rebuild AS SELECT * FROM trait_changes LIMIT 0;
                CREATE OR REPLACE TEMP TABLE event_profiles_rebuild (seq BIGINT, profile_id VARCHAR);
                """, cancellationToken);
        }

        // Most of the log is replayed while ingestion goes on; only the tail that arrived meanwhile waits for the lock.
        // What is committed so far; events still waiting for the committer are replayed with the tail, after the drain.
        var upTo = await ScalarAsync<long>("SELECT coalesce(max(seq), 0) FROM events", cancellationToken);
        await ReplayAsync(fresh, 0, upTo, apply ? rebuild : null, cancellationToken);
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            await DrainCommitsAsync();
            await ReplayAsync(fresh, upTo, _lastSeq, apply ? rebuild : null, cancellationToken);
            var comparison = _engine.CompareWith(fresh);
            if (!apply) { return comparison; }

            // Temp tables belong to the rebuild connection, so the swap runs there, as one transaction.
            using var transaction = rebuild.BeginTransaction();
            await ExecuteOnAsync(rebuild, """
                DELETE FROM identity_changes;
                INSERT INTO identity_changes SELECT * FROM identity_changes_rebuild;
                DELETE FROM trait_changes;
                INSERT INTO trait_changes SELECT * FROM trait_changes_rebuild;
                UPDATE events SET profile_id = r.profile_id FROM event_profiles_rebuild r WHERE events.seq = r.seq;
                UPDATE event_properties SET profile_id = r.profile_id FROM event_profiles_rebuild r WHERE event_properties.seq = r.seq;
                """, cancellationToken);
            _mayHaveMergedIds = true;
            using (var tables = new TableAppenders(rebuild)) { WriteProfileState(tables, fresh.StateSnapshot()); }
            if (addSeparation is { } s)
            {
                using var insert = Command(rebuild, "INSERT INTO identity_separations VALUES ($1, $2, $3, $4, $5)",
                    [s.Identifier.Type, s.Identifier.Value, ProfileRows.IdentifiersJson(s.ApartFrom) ?? "[]", s.At, s.Reason]);
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }

            transaction.Commit();
            var previous = _engine;
            _engine = fresh;
            _pendingTraitRows = 0;
            await TakeOverAudiencesAsync(previous, fresh, cancellationToken);
            return comparison;
        }
        catch (DuckDBException e)
        {
            throw DuckDbErrors.Translate(e, "re-resolve identities", options.Path);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Feeds events with afterSeq &lt; seq &lt;= upTo through <paramref name="fresh"/>; writes its output to the rebuild tables when given a connection.</summary>
    private async Task ReplayAsync(ProfileEngine fresh, long afterSeq, long upTo, DuckDBConnection? rebuild, CancellationToken cancellationToken)
    {
        if (upTo <= afterSeq) { return; }
        using var parallel = ParallelQuery();
        using var connection = OpenReader();
        using var command = Command(connection, $"SELECT {EventReader.Columns} FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq", [afterSeq, upTo]);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var chunk = new List<(long Seq, CollectedEvent Event)>(10_000);
        var storedUnder = new List<string?>(10_000);
        void Flush()
        {
            var processed = fresh.Process(chunk);
            if (rebuild is not null)
            {
                // Only events whose profile changes are rewritten: a rebuild that changes little writes little.
                using (var profiles = rebuild.CreateAppender("event_profiles_rebuild"))
                {
                    for (var i = 0; i < processed.Count; i++)
                    {
                        if (processed[i].ProfileId != storedUnder[i]) { profiles.CreateRow().AppendValue(processed[i].Seq).AppendValue(processed[i].ProfileId).EndRow(); }
                    }

                    profiles.Close();
                }

                using var tables = new TableAppenders(rebuild);
                AppendProfileChanges(tables, processed, "identity_changes_rebuild", "trait_changes_rebuild");
            }

            chunk.Clear();
            storedUnder.Clear();
        }

        while (await reader.ReadAsync(cancellationToken))
        {
            var stored = EventReader.Read(reader, _raw);
            chunk.Add((stored.Seq, stored.Message));
            storedUnder.Add(stored.ProfileId);
            if (chunk.Count == chunk.Capacity) { Flush(); }
        }

        if (chunk.Count > 0) { Flush(); }
    }

    private async Task ExecuteOnAsync(DuckDBConnection connection, string sql, CancellationToken cancellationToken)
    {
        using var command = Command(connection, sql, []);
        try
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (DuckDBException e)
        {
            throw DuckDbErrors.Translate(e, sql, options.Path);
        }
    }

    private async Task ReadInChunksAsync<T>(string sql, Func<System.Data.Common.DbDataReader, T> read, Action<List<T>> consume, CancellationToken cancellationToken)
    {
        using var connection = OpenReader();
        using var command = Command(connection, sql, []);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var chunk = new List<T>(50_000);
        while (await reader.ReadAsync(cancellationToken))
        {
            chunk.Add(read(reader));
            if (chunk.Count == chunk.Capacity)
            {
                consume(chunk);
                chunk.Clear();
            }
        }

        if (chunk.Count > 0) { consume(chunk); }
    }

    private async Task<List<T>> ReadAllAsync<T>(string sql, Func<System.Data.Common.DbDataReader, T> read, CancellationToken cancellationToken, params object?[] parameters)
    {
        using var connection = OpenReader();
        using var command = Command(connection, sql, parameters);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken)) { rows.Add(read(reader)); }
        return rows;
    }

    public async Task<EventPage> QueryAsync(EventQuery query, CancellationToken cancellationToken)
    {
        using var parallel = ParallelQuery();
        using var connection = OpenReader();
        using var command = connection.CreateCommand();
        command.CommandText = EventReader.PageSql(query, value =>
        {
            command.Parameters.Add(new DuckDBParameter(value));
            return $"${command.Parameters.Count}";
        });
        return await EventReader.ReadPageAsync(command, query.Limit, cancellationToken, _raw);
    }

    public async Task<AudiencePreview> PreviewAudienceAsync(
        AudienceCondition definition, Func<string, AudienceCondition?> segments, DateTimeOffset now, int sampleSize, CancellationToken cancellationToken)
    {
        using var parallel = ParallelQuery();
        using var connection = OpenReader();
        var (command, reader, sql) = await ReadAudienceAsync(connection, merged => AudienceQuery.Preview(DuckDbAudienceDialect.Instance, definition, _engine.ComputedDefinitions, segments, now, sampleSize, merged), cancellationToken);
        using (command)
        using (reader)
        {
            try
            {
                return await AudiencePreview.ReadAsync(reader, sampleSize, cancellationToken);
            }
            catch (DuckDBException e)
            {
                throw DuckDbErrors.Translate(e, sql.Text, options.Path);
            }
        }
    }

    public async IAsyncEnumerable<string> ListAudienceMembersAsync(
        AudienceCondition definition, Func<string, AudienceCondition?> segments, DateTimeOffset now, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var parallel = ParallelQuery();
        using var connection = OpenReader();
        var (command, reader, _) = await ReadAudienceAsync(connection, merged => AudienceQuery.Members(DuckDbAudienceDialect.Instance, definition, _engine.ComputedDefinitions, segments, now, merged), cancellationToken);
        using (command)
        using (reader)
        {
            while (await reader.ReadAsync(cancellationToken)) { yield return reader.GetString(0); }
        }
    }

    public AudienceSql ExplainAudienceSql(AudienceCondition definition, Func<string, AudienceCondition?> segments, DateTimeOffset now) =>
        AudienceQuery.Members(DuckDbAudienceDialect.Instance, definition, _engine.ComputedDefinitions, segments, now, mergedIds: true);

    public async Task<StoreStats> GetStatsAsync(CancellationToken cancellationToken)
    {
        var events = await ScalarAsync<long>("SELECT count(*) FROM events", cancellationToken);
        var sources = await ScalarAsync<long>("SELECT count(*) FROM sources", cancellationToken);
        var (profiles, identifiers, merges) = _engine.Counts();
        return new StoreStats(events, sources, profiles, identifiers, merges, Segments: _engine.Audiences.Count);
    }

    public async Task<Source> CreateSourceAsync(string name, string workspace, string writeKey, CancellationToken cancellationToken)
    {
        var source = new Source("src_" + Guid.CreateVersion7().ToString("N")[..20], name, workspace, writeKey, DateTimeOffset.UtcNow, null);
        await ExecuteAsync(
            "INSERT INTO sources (id, name, workspace, write_key, created_at) VALUES ($1, $2, $3, $4, $5)",
            cancellationToken, source.Id, source.Name, source.Workspace, source.WriteKey, source.CreatedAt);
        _engine.KnowSource(source.Id, source.Name);
        return source;
    }

    public Task<IReadOnlyList<Source>> ListSourcesAsync(CancellationToken cancellationToken) =>
        QuerySourcesAsync("ORDER BY created_at", cancellationToken);

    public async Task<Source?> GetSourceAsync(string id, CancellationToken cancellationToken) =>
        await FirstSourceAsync("WHERE id = $1", id, cancellationToken);

    public async Task<Source?> FindSourceByWriteKeyAsync(string writeKey, CancellationToken cancellationToken) =>
        await FirstSourceAsync("WHERE write_key = $1", writeKey, cancellationToken);

    public async Task<bool> RevokeSourceAsync(string id, CancellationToken cancellationToken) =>
        await ExecuteAsync(
            "UPDATE sources SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            cancellationToken, DateTimeOffset.UtcNow, id) > 0
        || await GetSourceAsync(id, cancellationToken) is not null;

    public async Task<string?> GetSettingAsync(string key, CancellationToken cancellationToken) =>
        await ScalarAsync<string?>("SELECT value FROM settings WHERE key = $1", cancellationToken, key);

    public async Task<string> SetSettingIfAbsentAsync(string key, string value, CancellationToken cancellationToken)
    {
        await ExecuteAsync("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING", cancellationToken, key, value);
        return (await GetSettingAsync(key, cancellationToken))!;
    }

    public async ValueTask DisposeAsync()
    {
        if (_writer is null)
        {
            DisposeInMemoryParts();
            return;
        }

        await _writeLock.WaitAsync();
        try
        {
            await StopCommitterAsync();
            await _activationLock.WaitAsync();
            try
            {
                // The next start derives from here, not from the derivation cursors' tables (DerivationPosition).
                await WriteAheadCursorsAsync(CancellationToken.None);
            }
            finally
            {
                _activationLock.Release();
            }

            // A checkpoint folds the write-ahead log into the file, so the next start does not replay it.
            await ExecuteAsync("CHECKPOINT", CancellationToken.None);
            await _writer.DisposeAsync();
            _writer = null;
            // After DuckDB closed the file: closing the pacer's handle drops this process's locks on it.
            _pacer?.Dispose();
            _pacer = null;
            DisposeInMemoryParts();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>What the store holds beside DuckDB's connection: its meter, the raw codec, the dedup table (native memory).</summary>
    private void DisposeInMemoryParts()
    {
        _metrics.Dispose();
        _raw.Dispose();
        _messageIds.Dispose();
        _commitNow.Dispose();
    }

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await ExecuteAsync("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ)", cancellationToken);
        var current = await ScalarAsync<int>("SELECT coalesce(max(version), 0) FROM schema_migrations", cancellationToken);
        var upgrade = SchemaUpgrade.Start(DuckDbMigrations.Steps, current, options.MigrateUpTo, options.Logger, System.IO.Path.GetFullPath(options.Path));
        await upgrade.ApplyEachAsync(async step =>
        {
            // One connection and one transaction per step: a step applies whole or not at all.
            using var connection = OpenReader();
            using var transaction = connection.BeginTransaction();
            try
            {
                using (var run = Command(connection, step.Sql, [])) { await run.ExecuteNonQueryAsync(cancellationToken); }
                using (var record = Command(connection, "INSERT INTO schema_migrations VALUES ($1, $2, $3)", [step.Version, step.Description, DateTimeOffset.UtcNow]))
                {
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }

                transaction.Commit();
            }
            catch (DuckDBException e)
            {
                throw DuckDbErrors.Translate(e, $"schema migration {step.Version} ({step.Description})", options.Path);
            }
        });
        upgrade.Done();
    }

    private async Task LoadMessageIdsAsync(CancellationToken cancellationToken)
    {
        using var connection = OpenReader();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT source_id, message_id, received_at FROM events WHERE received_at >= $1";
        command.Parameters.Add(new DuckDBParameter(DateTimeOffset.UtcNow - options.DedupWindow));
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            _messageIds.Add(MessageIdIndex.Key(reader.GetString(0), reader.GetString(1)), reader.GetFieldValue<DateTimeOffset>(2));
        }
    }

    private async Task<Source?> FirstSourceAsync(string where, string value, CancellationToken cancellationToken)
    {
        var sources = await QuerySourcesAsync(where, cancellationToken, value);
        return sources.Count > 0 ? sources[0] : null;
    }

    private async Task<IReadOnlyList<Source>> QuerySourcesAsync(string tail, CancellationToken cancellationToken, params object?[] parameters)
    {
        using var connection = OpenReader();
        using var command = Command(connection, $"SELECT {SourceRows.Columns} FROM sources {tail}", parameters);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var sources = new List<Source>();
        while (await reader.ReadAsync(cancellationToken))
        {
            sources.Add(SourceRows.Read(reader));
        }

        return sources;
    }

    // DuckDB.NET shares one database instance among all connections to the same file in a process,
    // so a connection per read is cheap and keeps reads off the writer's connection.
    /// <summary>
    /// DuckDB's buffer memory by tag, for the <c>tessera.store.duckdb.memory</c> gauge (read when a listener collects:
    /// one query of a few milliseconds). Nothing while the store is closed or closing: a gauge has no one to tell.
    /// </summary>
    private List<System.Diagnostics.Metrics.Measurement<long>> DuckDbMemory()
    {
        var measurements = new List<System.Diagnostics.Metrics.Measurement<long>>();
        if (_writer is null || _closing) { return measurements; }
        try
        {
            using var connection = OpenReader();
            using var command = Command(connection, "SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0", []);
            using var reader = command.ExecuteReader();
            while (reader.Read()) { measurements.Add(new(reader.GetInt64(1), new KeyValuePair<string, object?>("tag", reader.GetString(0)))); }
        }
        catch (Exception e) when (e is DuckDBException or ObjectDisposedException or InvalidOperationException)
        {
            // Closed between the check and the query.
        }

        return measurements;
    }

    private void SetThreads(int threads)
    {
        using var connection = OpenReader();
        Execute(connection, FormattableString.Invariant($"SET GLOBAL threads = {threads}"));
    }

    private DuckDBConnection OpenReader()
    {
        if (_writer is null) { throw new InvalidOperationException("The store is not open."); }
        var connection = new DuckDBConnection(_writer.ConnectionString);
        connection.Open();
        return connection;
    }

    private static DuckDBCommand Command(DuckDBConnection connection, string sql, object?[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var p in parameters) { command.Parameters.Add(new DuckDBParameter(p ?? DBNull.Value)); }
        return command;
    }

    private async Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken, params object?[] parameters)
    {
        using var connection = OpenReader();
        using var command = Command(connection, sql, parameters);
        try
        {
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (DuckDBException e)
        {
            throw DuckDbErrors.Translate(e, sql, options.Path);
        }
    }

    private async Task<T> ScalarAsync<T>(string sql, CancellationToken cancellationToken, params object?[] parameters)
    {
        using var connection = OpenReader();
        using var command = Command(connection, sql, parameters);
        try
        {
            var value = await command.ExecuteScalarAsync(cancellationToken);
            return value is null or DBNull ? default! : (T)Convert.ChangeType(value, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T));
        }
        catch (DuckDBException e)
        {
            throw DuckDbErrors.Translate(e, sql, options.Path);
        }
    }
}
