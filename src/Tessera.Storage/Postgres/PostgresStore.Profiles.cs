using System.Data.Common;
using Npgsql;
using NpgsqlTypes;
using Tessera.Core.Collection;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Storage.Events;
using Tessera.Storage.Profiles;

namespace Tessera.Storage.Postgres;

/// <summary>
/// Profiles on PostgreSQL. Every process keeps its own <see cref="ProfileEngine"/>; they agree because resolution is
/// deterministic (a profile's id comes from the seq that created it) and each one applies the same log in seq order:
/// its own batches under the resolution lock, the others' by catching up (under the lock before appending, and every
/// <see cref="PostgresStoreOptions.CatchUpInterval"/> without it, which is safe because seqs are allocated under the
/// lock and so commit in seq order). A re-resolution or a computed trait change bumps <c>identity_generation</c>;
/// a process that sees a newer generation rebuilds its engine from the tables.
/// </summary>
public sealed partial class PostgresStore
{
    // Another class than the migration lock's (74551), the same key: the schema. The lock's statement also turns
    // PostgreSQL's JIT off for the rest of the transaction (audience queries keep the server's setting): the claim's
    // 20,000 primary-key probes are estimated past jit_above_cost, and compiling them took about 40 ms of a 100 ms
    // statement (EXPLAIN ANALYZE at 1,000,000 remembered pairs); a resolving transaction's statements are short.
    private const string ResolutionLock = "SELECT pg_advisory_xact_lock(74552, hashtext($1)), set_config('jit', 'off', true)";
    private const string IdentityCopyColumns = "(seq, ordinal, kind, profile_id, other_profile_id, id_type, id_value, occurred_at, cause, detail, identifiers) FROM STDIN (FORMAT BINARY)";
    private const string TraitCopyColumns = "(seq, profile_id, name, value, occurred_at, source_id) FROM STDIN (FORMAT BINARY)";

    // How many rows PagesAsync reads at a time.
    private const int ReplayPage = 10_000;

    // The events committed after $1, a page (see PagesAsync).
    private static readonly string MissedPage = $"SELECT {EventReader.Columns} FROM events WHERE seq > $1 ORDER BY seq LIMIT {ReplayPage}";

    private readonly SemaphoreSlim _engineLock = new(1, 1);
    private volatile ProfileEngine _engine;
    private volatile bool _engineStale;
    private long _appliedSeq;
    private long _generation;
    private HashSet<string> _storedComputed = [];
    private CancellationTokenSource? _catchUpStop;
    private Task? _catchUpLoop;

    public ProfileEngine Engine => _engine;

    /// <summary>The last seq this process's engine has applied (its own appends and the others' it caught up with).</summary>
    internal long AppliedSeq => Volatile.Read(ref _appliedSeq);

    public async Task<IReadOnlyList<IdentityChange>> GetIdentityChangesAsync(IReadOnlyCollection<string> profileIds, CancellationToken cancellationToken)
    {
        if (profileIds.Count == 0) { return []; }
        return await RunAsync("read identity changes", connection => ReadAllAsync(
            connection,
            $"SELECT {ProfileRows.IdentityColumns} FROM identity_changes WHERE profile_id = ANY($1) OR other_profile_id = ANY($1) ORDER BY seq, ordinal",
            ProfileRows.ReadIdentity, cancellationToken, (object)profileIds.ToArray()), cancellationToken);
    }

    public async Task<IReadOnlyList<TraitChange>> GetTraitHistoryAsync(IReadOnlyCollection<string> profileIds, CancellationToken cancellationToken)
    {
        if (profileIds.Count == 0) { return []; }
        return await RunAsync("read trait history", connection => ReadAllAsync(
            connection,
            $"SELECT {ProfileRows.TraitColumns} FROM trait_changes WHERE profile_id = ANY($1) ORDER BY seq, id",
            ProfileRows.ReadTrait, cancellationToken, (object)profileIds.ToArray()), cancellationToken);
    }

    public async Task<IReadOnlyList<ComputedTraitDefinition>> ListComputedTraitsAsync(CancellationToken cancellationToken) =>
        await RunAsync("list computed traits", connection => ListComputedAsync(connection, cancellationToken), cancellationToken);

    public async Task SaveComputedTraitAsync(ComputedTraitDefinition definition, CancellationToken cancellationToken) =>
        await ChangeComputedAsync("save computed trait", async connection =>
        {
            await ExecuteAsync(
                connection,
                "INSERT INTO computed_traits (name, definition, created_at) VALUES ($1, $2, now()) ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition",
                cancellationToken, definition.Name, ComputedTraitJson.Write(definition));
            // Under the resolution lock and caught up: no event slips between the backfill and the live updates.
            Engine.DefineComputed(definition);
            await BackfillAsync(connection, Engine, definition, cancellationToken);
            _storedComputed.Add(definition.Name);
            return true;
        }, cancellationToken);

    public async Task<bool> DeleteComputedTraitAsync(string name, CancellationToken cancellationToken) =>
        await ChangeComputedAsync("delete computed trait", async connection =>
        {
            if (await ExecuteAsync(connection, "DELETE FROM computed_traits WHERE name = $1", cancellationToken, name) == 0) { return false; }
            Engine.RemoveComputed(name);
            _storedComputed.Remove(name);
            return true;
        }, cancellationToken);

    /// <summary>A computed trait change, made under the resolution lock and announced to the other processes by a new generation.</summary>
    private async Task<bool> ChangeComputedAsync(string what, Func<NpgsqlConnection, Task<bool>> change, CancellationToken cancellationToken) =>
        await RunAsync(what, async connection =>
        {
            await _engineLock.WaitAsync(cancellationToken);
            try
            {
                await using var transaction = await BeginResolvingAsync(connection, cancellationToken);
                if (!await change(connection)) { return false; }
                var generation = await ScalarAsync<long>(connection, "UPDATE identity_generation SET generation = generation + 1 RETURNING generation", cancellationToken);
                await transaction.CommitAsync(cancellationToken);
                _generation = generation;
                return true;
            }
            catch
            {
                _engineStale = true;
                throw;
            }
            finally
            {
                _engineLock.Release();
            }
        }, cancellationToken);

    public async Task<GraphComparison> ReresolveAsync(ProfileEngine fresh, bool apply, IdentitySeparation? addSeparation, CancellationToken cancellationToken) =>
        await RunAsync("re-resolve identities", async rebuild =>
        {
            var target = apply ? rebuild : null;
            try
            {
                if (apply)
                {
                    await ExecuteAsync(rebuild, """
                        DROP TABLE IF EXISTS pg_temp.identity_changes_rebuild, pg_temp.trait_changes_rebuild, pg_temp.event_profiles_rebuild;
                        CREATE TEMP TABLE identity_changes_rebuild (LIKE identity_changes);
                        CREATE TEMP TABLE trait_changes_rebuild (LIKE trait_changes INCLUDING IDENTITY);
                        CREATE TEMP TABLE event_profiles_rebuild (seq bigint NOT NULL, profile_id text);
                        """, cancellationToken);
                }

                // Most of the log is replayed while every process keeps ingesting; only the tail waits for the lock.
                var separations = await ScalarAsync<long>(rebuild, "SELECT count(*) FROM identity_separations", cancellationToken);
                var upTo = await ScalarAsync<long>(rebuild, "SELECT coalesce(max(seq), 0) FROM events", cancellationToken);
                await ReplayAsync(rebuild, fresh, 0, upTo, target, cancellationToken);

                await _engineLock.WaitAsync(cancellationToken);
                try
                {
                    await using var transaction = await BeginResolvingAsync(rebuild, cancellationToken);
                    if (await ScalarAsync<long>(rebuild, "SELECT count(*) FROM identity_separations", cancellationToken) != separations)
                    {
                        throw new StoreException("Another Tessera process unmerged profiles during this re-resolution; run it again.");
                    }

                    var last = await ScalarAsync<long>(rebuild, "SELECT coalesce(max(seq), 0) FROM events", cancellationToken);
                    await ReplayAsync(rebuild, fresh, upTo, last, target, cancellationToken);
                    var comparison = Engine.CompareWith(fresh);
                    if (!apply) { return comparison; }

                    await ExecuteAsync(rebuild, """
                        DELETE FROM identity_changes;
                        INSERT INTO identity_changes SELECT * FROM identity_changes_rebuild;
                        DELETE FROM trait_changes;
                        INSERT INTO trait_changes (seq, profile_id, name, value, occurred_at, source_id)
                            SELECT seq, profile_id, name, value, occurred_at, source_id FROM trait_changes_rebuild ORDER BY id;
                        UPDATE events SET profile_id = r.profile_id FROM event_profiles_rebuild r
                            WHERE events.seq = r.seq AND events.profile_id IS DISTINCT FROM r.profile_id;
                        """, cancellationToken);
                    await ReplaceProfileStateAsync(rebuild, fresh.StateSnapshot(), cancellationToken);
                    if (addSeparation is { } s)
                    {
                        await ExecuteAsync(
                            rebuild, "INSERT INTO identity_separations VALUES ($1, $2, $3, $4, $5)", cancellationToken,
                            s.Identifier.Type, s.Identifier.Value, ProfileRows.IdentifiersJson(s.ApartFrom) ?? "[]", s.At.ToUniversalTime(), s.Reason);
                    }

                    // The other processes see the new generation and rebuild their engines from the swapped tables.
                    var generation = await ScalarAsync<long>(rebuild, "UPDATE identity_generation SET generation = generation + 1 RETURNING generation", cancellationToken);
                    var audienceChanges = await TakeOverAudiencesAsync(rebuild, Engine, fresh, cancellationToken);
                    await transaction.CommitAsync(cancellationToken);
                    Announce(audienceChanges);
                    _engine = fresh;
                    _generation = generation;
                    Volatile.Write(ref _appliedSeq, last);
                    return comparison;
                }
                finally
                {
                    _engineLock.Release();
                }
            }
            finally
            {
                if (apply && rebuild.State == System.Data.ConnectionState.Open)
                {
                    await ExecuteAsync(rebuild, "DROP TABLE IF EXISTS pg_temp.identity_changes_rebuild, pg_temp.trait_changes_rebuild, pg_temp.event_profiles_rebuild", CancellationToken.None);
                }
            }
        }, cancellationToken);

    /// <summary>Feeds events with afterSeq &lt; seq &lt;= upTo through <paramref name="fresh"/>, a page at a time; copies its output to the rebuild tables when given a connection.</summary>
    private static async Task ReplayAsync(NpgsqlConnection connection, ProfileEngine fresh, long afterSeq, long upTo, NpgsqlConnection? rebuild, CancellationToken cancellationToken)
    {
        await foreach (var page in PagesAsync(
            connection, $"SELECT {EventReader.Columns} FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT {ReplayPage}",
            r => EventReader.Read(r), e => e.Seq, afterSeq, cancellationToken, upTo))
        {
            var processed = fresh.Process([.. page.Select(e => (e.Seq, e.Message))]);
            if (rebuild is not null)
            {
                await using (var profiles = await rebuild.BeginBinaryImportAsync("COPY event_profiles_rebuild (seq, profile_id) FROM STDIN (FORMAT BINARY)", cancellationToken))
                {
                    foreach (var p in processed)
                    {
                        await profiles.StartRowAsync(cancellationToken);
                        await profiles.WriteAsync(p.Seq, NpgsqlDbType.Bigint, cancellationToken);
                        await WriteTextAsync(profiles, p.ProfileId, cancellationToken);
                    }

                    await profiles.CompleteAsync(cancellationToken);
                }

                await CopyProfileChangesAsync(rebuild, processed, "identity_changes_rebuild", "trait_changes_rebuild", cancellationToken);
            }
        }
    }

    /// <summary>
    /// Reads <paramref name="sql"/> a page at a time: it selects the rows whose key is past $1 in key order, <c>LIMIT
    /// ReplayPage</c> (further parameters from $2 on); each page starts after the last key of the one before, until one
    /// comes back short. The LIMIT keeps PostgreSQL on the key's index whatever the table's statistics say: without it,
    /// on an events table not yet analyzed (a new database, until autovacuum first gets to it), the catch-up's
    /// <c>seq &gt; $1</c> was estimated at a third of the table, which was read and sorted in parallel to find nothing,
    /// in every append under the lock (110-170 ms at 500,000 events, growing with the table).
    /// </summary>
    private static async IAsyncEnumerable<List<T>> PagesAsync<T>(
        NpgsqlConnection connection, string sql, Func<DbDataReader, T> read, Func<T, long> keyOf, long after,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken, params object?[] more)
    {
        while (true)
        {
            var page = await ReadAllAsync(connection, sql, read, cancellationToken, [after, .. more]);
            if (page.Count > 0) { yield return page; }
            if (page.Count < ReplayPage) { yield break; }
            after = keyOf(page[^1]);
        }
    }

    /// <summary>
    /// Begins a transaction that holds the resolution lock, with the engine caught up. When the engine must be rebuilt
    /// (another process re-resolved, or this one failed mid-append), the lock is let go and the rebuild reads a
    /// snapshot, so the other processes keep appending meanwhile; only a third attempt rebuilds under the lock.
    /// </summary>
    private async Task<NpgsqlTransaction> BeginResolvingAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken);
            try
            {
                if (await LockAndCatchUpAsync(connection, reloadUnderLock: attempt >= 3, cancellationToken)) { return transaction; }
            }
            catch
            {
                await transaction.DisposeAsync();
                throw;
            }

            await transaction.DisposeAsync();
            await using var snapshot = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
            await ReloadAsync(connection, cancellationToken);
            await snapshot.CommitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Takes the resolution lock (to the end of the current transaction), then brings the engine up to date with the
    /// events others committed since; one round trip. False when the engine needs a rebuild instead and
    /// <paramref name="reloadUnderLock"/> is not set.
    /// </summary>
    private async Task<bool> LockAndCatchUpAsync(NpgsqlConnection connection, bool reloadUnderLock, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(ResolutionLock) { Parameters = { new NpgsqlParameter { Value = _schema ?? "public" } } },
                new NpgsqlBatchCommand("SELECT generation FROM identity_generation"),
                new NpgsqlBatchCommand(MissedPage) { Parameters = { new NpgsqlParameter { Value = AppliedSeq } } },
            },
        };
        long generation;
        var missed = new List<(long Seq, CollectedEvent Event)>();
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken))
        {
            await reader.NextResultAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            generation = reader.GetInt64(0);
            await reader.NextResultAsync(cancellationToken);
            if (!_engineStale && generation == _generation)
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    var stored = EventReader.Read(reader);
                    missed.Add((stored.Seq, stored.Message));
                }
            }
        }

        if (_engineStale || generation != _generation)
        {
            if (!reloadUnderLock) { return false; }
            await ReloadAsync(connection, cancellationToken);
            return true;
        }

        if (missed.Count == ReplayPage) { await ReadMissedAsync(connection, missed[^1].Seq, missed, cancellationToken); }
        Apply(missed);
        await SyncMembershipsAsync(connection, cancellationToken);
        return true;
    }

    /// <summary>Adds the events committed after <paramref name="after"/> to <paramref name="missed"/>, in seq order.</summary>
    private static async Task ReadMissedAsync(NpgsqlConnection connection, long after, List<(long Seq, CollectedEvent Event)> missed, CancellationToken cancellationToken)
    {
        await foreach (var page in PagesAsync(connection, MissedPage, r => { var e = EventReader.Read(r); return (e.Seq, e.Message); }, e => e.Seq, after, cancellationToken))
        {
            missed.AddRange(page);
        }
    }

    /// <summary>Applies events other processes committed; what they produce was stored by those processes, so it is dropped.</summary>
    private void Apply(List<(long Seq, CollectedEvent Event)> missed)
    {
        if (missed.Count == 0) { return; }
        Engine.Process(missed);
        Volatile.Write(ref _appliedSeq, missed[^1].Seq);
    }

    private async Task RestoreProfilesAsync(CancellationToken cancellationToken)
    {
        await _engineLock.WaitAsync(cancellationToken);
        try
        {
            await RunAsync("restore profiles", async connection =>
            {
                // One snapshot: the events, the identity log and the traits it reads agree with each other.
                await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
                await ReloadAsync(connection, cancellationToken);
                await transaction.CommitAsync(cancellationToken);
                return 0;
            }, cancellationToken);
        }
        finally
        {
            _engineLock.Release();
        }
    }

    /// <summary>Builds a new engine from the tables as <paramref name="connection"/> sees them (under the lock or in one snapshot) and swaps it in.</summary>
    private async Task ReloadAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var generation = await ScalarAsync<long>(connection, "SELECT generation FROM identity_generation", cancellationToken);
        var applied = await ScalarAsync<long>(connection, "SELECT coalesce(max(seq), 0) FROM events", cancellationToken);
        var separations = await ReadAllAsync(connection, "SELECT id_type, id_value, apart_from, occurred_at, reason FROM identity_separations ORDER BY occurred_at", ProfileRows.ReadSeparation, cancellationToken);
        var identity = await ReadAllAsync(connection, $"SELECT {ProfileRows.IdentityColumns} FROM identity_changes WHERE kind IN ('Created', 'Linked', 'Merged') ORDER BY seq, ordinal", ProfileRows.ReadIdentity, cancellationToken);
        var traits = await ReadAllAsync(connection, $"SELECT {ProfileRows.TraitColumns} FROM trait_changes ORDER BY seq, id", ProfileRows.ReadTrait, cancellationToken);
        var stored = await ListComputedAsync(connection, cancellationToken);

        var engine = Engine.Fresh(separations: separations);
        foreach (var gone in _storedComputed.Except(stored.Select(d => d.Name))) { engine.RemoveComputed(gone); }
        foreach (var definition in stored) { engine.DefineComputed(definition); }
        engine.Restore(identity, traits);
        await BackfillAsync(connection, engine, null, cancellationToken);
        await RestoreAudiencesAsync(connection, engine, cancellationToken);

        _engine = engine;
        _generation = generation;
        _storedComputed = [.. stored.Select(d => d.Name)];
        Volatile.Write(ref _appliedSeq, applied);
        _engineStale = false;
    }

    /// <summary>Feeds the stored events that computed traits read (all of them, or one definition's) to <paramref name="engine"/>.</summary>
    private static async Task BackfillAsync(NpgsqlConnection connection, ProfileEngine engine, ComputedTraitDefinition? only, CancellationToken cancellationToken)
    {
        var names = (only is null ? engine.ComputedDefinitions : [only]).Select(d => d.Event).Distinct().ToArray();
        if (names.Length == 0) { return; }
        var rows = await ReadAllAsync(
            connection, $"SELECT {EventReader.Columns} FROM events WHERE profile_id IS NOT NULL AND event = ANY($1) ORDER BY seq",
            r => EventReader.Read(r), cancellationToken, (object)names);
        engine.Backfill(rows.Select(r => (r.ProfileId!, r.Message)), only);
    }

    private static Task<List<ComputedTraitDefinition>> ListComputedAsync(NpgsqlConnection connection, CancellationToken cancellationToken) =>
        ReadAllAsync(connection, "SELECT definition FROM computed_traits ORDER BY created_at, name", r => ComputedTraitJson.Read(r.GetString(0)), cancellationToken);

    /// <summary>
    /// The first of <paramref name="count"/> consecutive seqs for a batch, allocated under the resolution lock: they are
    /// higher than every committed one, so seq order is commit order. One block in one statement (the sequence moved
    /// on by <paramref name="count"/>), not a <c>nextval</c> a row: every allocation of an events seq takes the lock, so
    /// no other session can take a value between the <c>nextval</c> and the <c>setval</c>.
    /// </summary>
    private static async Task<long> AllocateSeqsAsync(NpgsqlConnection connection, int count, CancellationToken cancellationToken)
    {
        var last = await ScalarAsync<long>(connection,
            "SELECT setval(pg_get_serial_sequence('events', 'seq'), nextval(pg_get_serial_sequence('events', 'seq')) + $1 - 1)",
            cancellationToken, (long)count);
        return last - count + 1;
    }

    private static async Task CopyProfileChangesAsync(NpgsqlConnection connection, IReadOnlyList<ProcessedEvent> processed, string identityTable, string traitTable, CancellationToken cancellationToken)
    {
        if (processed.Any(p => p.Changes.Count > 0))
        {
            await using var identity = await connection.BeginBinaryImportAsync($"COPY {identityTable} {IdentityCopyColumns}", cancellationToken);
            foreach (var c in processed.SelectMany(p => p.Changes))
            {
                await identity.StartRowAsync(cancellationToken);
                await identity.WriteAsync(c.Seq, NpgsqlDbType.Bigint, cancellationToken);
                await identity.WriteAsync(c.Ordinal, NpgsqlDbType.Integer, cancellationToken);
                await identity.WriteAsync(c.Kind.ToString(), NpgsqlDbType.Text, cancellationToken);
                await WriteTextAsync(identity, c.ProfileId, cancellationToken);
                await WriteTextAsync(identity, c.OtherProfileId, cancellationToken);
                await WriteTextAsync(identity, c.Identifier?.Type, cancellationToken);
                await WriteTextAsync(identity, c.Identifier?.Value, cancellationToken);
                await identity.WriteAsync(c.At.ToUniversalTime(), NpgsqlDbType.TimestampTz, cancellationToken);
                await identity.WriteAsync(c.Cause, NpgsqlDbType.Text, cancellationToken);
                await WriteTextAsync(identity, c.Detail, cancellationToken);
                await WriteTextAsync(identity, ProfileRows.IdentifiersJson(c.Identifiers), cancellationToken);
            }

            await identity.CompleteAsync(cancellationToken);
        }

        if (processed.Any(p => p.Traits.Count > 0))
        {
            await using var traits = await connection.BeginBinaryImportAsync($"COPY {traitTable} {TraitCopyColumns}", cancellationToken);
            foreach (var t in processed.SelectMany(p => p.Traits))
            {
                await traits.StartRowAsync(cancellationToken);
                await traits.WriteAsync(t.Value.Seq, NpgsqlDbType.Bigint, cancellationToken);
                await traits.WriteAsync(t.ProfileId, NpgsqlDbType.Text, cancellationToken);
                await traits.WriteAsync(t.Name, NpgsqlDbType.Text, cancellationToken);
                await WriteTextAsync(traits, t.Value.Value?.ToJsonString(), cancellationToken);
                await traits.WriteAsync(t.Value.At.ToUniversalTime(), NpgsqlDbType.TimestampTz, cancellationToken);
                await traits.WriteAsync(t.Value.SourceId, NpgsqlDbType.Text, cancellationToken);
            }

            await traits.CompleteAsync(cancellationToken);
        }
    }

    /// <summary>
    /// A database upgraded to schema 4 has its profile state tables empty: they are written once, under the
    /// resolution lock, from the engine the identity log and trait history just rebuilt.
    /// </summary>
    private async Task WriteProfileStateIfMissingAsync(CancellationToken cancellationToken)
    {
        await _engineLock.WaitAsync(cancellationToken);
        try
        {
            await RunAsync("write the profile state tables", async connection =>
            {
                await using var transaction = await BeginResolvingAsync(connection, cancellationToken);
                if (Engine.Counts().Profiles > 0 && !await ScalarAsync<bool>(connection, "SELECT EXISTS (SELECT 1 FROM profile_ids)", cancellationToken))
                {
                    await ReplaceProfileStateAsync(connection, Engine.StateSnapshot(), cancellationToken);
                }

                await transaction.CommitAsync(cancellationToken);
                return 0;
            }, cancellationToken);
        }
        finally
        {
            _engineLock.Release();
        }
    }

    /// <summary>
    /// Brings the profile state tables up to date with one append, inside its transaction: new ids and links copied,
    /// merged ids (and every id that pointed at them) repointed in one update, touched profiles' traits upserted.
    /// Merged-away profiles' trait rows stay behind: audiences only read live profiles.
    /// </summary>
    private static async Task WriteProfileStateAsync(NpgsqlConnection connection, ProfileStateChanges changes, CancellationToken cancellationToken)
    {
        if (changes.IsEmpty) { return; }
        if (changes.Created.Count > 0) { await CopyProfileIdsAsync(connection, [.. changes.Created.Select(id => (id, id))], cancellationToken); }
        if (changes.Merges.Count > 0)
        {
            await ExecuteAsync(
                connection,
                "UPDATE profile_ids SET profile_id = s.live FROM unnest($1::text[], $2::text[]) AS s(merged, live) WHERE profile_ids.profile_id = s.merged",
                cancellationToken, changes.Merges.Select(m => m.Merged).ToArray(), changes.Merges.Select(m => m.Live).ToArray());
        }

        await CopyIdentifiersAsync(connection, changes.Links, cancellationToken);
        if (changes.Traits.Count > 0)
        {
            var rows = changes.Traits;
            await ExecuteAsync(connection, """
                INSERT INTO profile_traits (profile_id, name, value, kind, text, num, instant)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[], $7::timestamptz[])
                ON CONFLICT (profile_id, name) DO UPDATE SET value = EXCLUDED.value, kind = EXCLUDED.kind, text = EXCLUDED.text,
                    num = EXCLUDED.num, instant = EXCLUDED.instant
                """, cancellationToken,
                rows.Select(t => t.ProfileId).ToArray(), rows.Select(t => t.Name).ToArray(), rows.Select(t => t.Json).ToArray(),
                rows.Select(t => t.Kind).ToArray(), rows.Select(t => t.Text).ToArray(), rows.Select(t => t.Number).ToArray(),
                rows.Select(t => t.Instant?.ToUniversalTime()).ToArray());
        }
    }

    /// <summary>Replaces the profile state tables' contents with <paramref name="snapshot"/>, inside the caller's transaction.</summary>
    private static async Task ReplaceProfileStateAsync(NpgsqlConnection connection, ProfileStateSnapshot snapshot, CancellationToken cancellationToken)
    {
        await ExecuteAsync(connection, "DELETE FROM profile_ids; DELETE FROM profile_identifiers; DELETE FROM profile_traits;", cancellationToken);
        await CopyProfileIdsAsync(connection, snapshot.ProfileIds, cancellationToken);
        await CopyIdentifiersAsync(connection, snapshot.Identifiers, cancellationToken);
        if (snapshot.Traits.Count == 0) { return; }
        await using var traits = await connection.BeginBinaryImportAsync("COPY profile_traits (profile_id, name, value, kind, text, num, instant) FROM STDIN (FORMAT BINARY)", cancellationToken);
        foreach (var (profileId, name, value) in snapshot.Traits)
        {
            var t = TraitRow.Of(profileId, name, value.Value);
            await traits.StartRowAsync(cancellationToken);
            await traits.WriteAsync(t.ProfileId, NpgsqlDbType.Text, cancellationToken);
            await traits.WriteAsync(t.Name, NpgsqlDbType.Text, cancellationToken);
            await WriteTextAsync(traits, t.Json, cancellationToken);
            await traits.WriteAsync(t.Kind, NpgsqlDbType.Text, cancellationToken);
            await WriteTextAsync(traits, t.Text, cancellationToken);
            if (t.Number is { } n) { await traits.WriteAsync(n, NpgsqlDbType.Numeric, cancellationToken); } else { await traits.WriteNullAsync(cancellationToken); }
            await WriteTimeAsync(traits, t.Instant, cancellationToken);
        }

        await traits.CompleteAsync(cancellationToken);
    }

    private static async Task CopyProfileIdsAsync(NpgsqlConnection connection, IReadOnlyList<(string Id, string Live)> ids, CancellationToken cancellationToken)
    {
        if (ids.Count == 0) { return; }
        await using var copy = await connection.BeginBinaryImportAsync("COPY profile_ids (id, profile_id) FROM STDIN (FORMAT BINARY)", cancellationToken);
        foreach (var (id, live) in ids)
        {
            await copy.StartRowAsync(cancellationToken);
            await copy.WriteAsync(id, NpgsqlDbType.Text, cancellationToken);
            await copy.WriteAsync(live, NpgsqlDbType.Text, cancellationToken);
        }

        await copy.CompleteAsync(cancellationToken);
    }

    private static async Task CopyIdentifiersAsync(NpgsqlConnection connection, IReadOnlyList<(string ProfileId, Identifier Identifier)> links, CancellationToken cancellationToken)
    {
        if (links.Count == 0) { return; }
        await using var copy = await connection.BeginBinaryImportAsync("COPY profile_identifiers (profile_id, id_type, id_value) FROM STDIN (FORMAT BINARY)", cancellationToken);
        foreach (var (profileId, identifier) in links)
        {
            await copy.StartRowAsync(cancellationToken);
            await copy.WriteAsync(profileId, NpgsqlDbType.Text, cancellationToken);
            await copy.WriteAsync(identifier.Type, NpgsqlDbType.Text, cancellationToken);
            await copy.WriteAsync(identifier.Value, NpgsqlDbType.Text, cancellationToken);
        }

        await copy.CompleteAsync(cancellationToken);
    }

    private void StartCatchUpLoop()
    {
        if (_options.CatchUpInterval <= TimeSpan.Zero || _catchUpLoop is not null) { return; }
        _catchUpStop = new CancellationTokenSource();
        var stop = _catchUpStop.Token;
        _catchUpLoop = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(_options.CatchUpInterval);
            try
            {
                while (await timer.WaitForNextTickAsync(stop))
                {
                    try
                    {
                        await CatchUpAsync(stop, skipWhenBusy: true);
                    }
                    catch (Exception e) when (e is StoreException or StoreUnavailableException)
                    {
                        // PostgreSQL is away: reads stay as they were; the next tick (or append) tries again.
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // Disposed.
            }
        }, CancellationToken.None);
    }

    /// <summary>
    /// Applies what other processes committed, without the resolution lock: a process appending holds the lock from
    /// before its seqs are allocated to its commit, so every seq below a visible one is visible too. Skipped when an
    /// append (which catches up itself) or another catch-up is running, if <paramref name="skipWhenBusy"/> (the loop's
    /// ticks); otherwise it waits for them, so everything committed before the call is applied when it returns.
    /// </summary>
    internal async Task CatchUpAsync(CancellationToken cancellationToken, bool skipWhenBusy = false)
    {
        if (skipWhenBusy)
        {
            if (!await _engineLock.WaitAsync(0, cancellationToken)) { return; }
        }
        else
        {
            await _engineLock.WaitAsync(cancellationToken);
        }

        try
        {
            await RunAsync("catch up with other processes", async connection =>
            {
                await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
                var generation = await ScalarAsync<long>(connection, "SELECT generation FROM identity_generation", cancellationToken);
                if (_engineStale || generation != _generation)
                {
                    await ReloadAsync(connection, cancellationToken);
                }
                else
                {
                    var missed = new List<(long Seq, CollectedEvent Event)>();
                    await ReadMissedAsync(connection, AppliedSeq, missed, cancellationToken);
                    Apply(missed);
                    await SyncMembershipsAsync(connection, cancellationToken);
                }

                await transaction.CommitAsync(cancellationToken);
                return 0;
            }, cancellationToken);
        }
        finally
        {
            _engineLock.Release();
        }
    }

    private async Task StopCatchUpLoopAsync()
    {
        if (_catchUpStop is null || _catchUpLoop is null) { return; }
        await _catchUpStop.CancelAsync();
        await _catchUpLoop;
        _catchUpStop.Dispose();
        _catchUpStop = null;
        _catchUpLoop = null;
    }

    private static async Task<List<T>> ReadAllAsync<T>(NpgsqlConnection connection, string sql, Func<DbDataReader, T> read, CancellationToken cancellationToken, params object?[] parameters)
    {
        await using var command = Command(connection, sql, parameters);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken)) { rows.Add(read(reader)); }
        return rows;
    }
}
