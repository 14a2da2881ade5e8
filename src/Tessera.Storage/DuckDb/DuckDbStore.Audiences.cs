using DuckDB.NET.Data;
using Tessera.Core.Audiences;
using Tessera.Core.Profiles;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;

namespace Tessera.Storage.DuckDb;

/// <summary>Audiences on DuckDB: definitions and the change log, written by the one writer.</summary>
public sealed partial class DuckDbStore : IAudienceStore
{
    private long _lastAudienceChange;

    public event Action<IReadOnlyList<AudienceChange>>? AudienceChanged;

    public event Action<IReadOnlyList<StoredAudienceChange>>? AudienceStaged;

    public async Task<IReadOnlyList<AudienceChange>> SaveAudienceAsync(Audience audience, CancellationToken cancellationToken)
    {
        // Under the write lock, so no event slips between the backfill and the live updates.
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            // The backfill reads the events table: everything staged must be in it first.
            await DrainCommitsAsync();
            var engine = _engine;
            var existed = engine.GetAudience(audience.Id) is not null;
            engine.DefineAudience(audience);
            await BackfillAudiencesAsync(engine, AudienceRows.EventNames(audience, engine), cancellationToken);
            var changes = engine.EvaluateAudiences(null, existed ? "audience changed" : "audience created");
            await CommitAudiencesAsync(changes, "save audience", cancellationToken, ("INSERT OR REPLACE INTO audiences VALUES ($1, $2, $3, $4, $5, $6)",
                [audience.Id, audience.Name, audience.Description, AudienceRows.DefinitionJson(audience), audience.CreatedAt, audience.UpdatedAt]));
            return changes;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task<bool> DeleteAudienceAsync(string id, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            if (_engine.GetAudience(id) is null) { return false; }
            var changes = _engine.RemoveAudience(id);
            await CommitAudiencesAsync(changes, "delete audience", cancellationToken, ("DELETE FROM audiences WHERE id = $1", [id]));
            return true;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task<int> TickAudiencesAsync(CancellationToken cancellationToken)
    {
        if (!_engine.TryGetNextAudienceTick(out var next) || next is not { } due || due > _engine.Clock.GetUtcNow()) { return 0; }
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            // Staged like an append's changes: a tick never waits for a commit (one running a checkpoint takes seconds).
            var changes = NumberChanges(_engine.TickAudiences());
            if (changes.Count > 0) { _ = Stage(tables => AppendAudienceChanges(tables, changes), 0, 0, 0, changes, false, null); }
            return changes.Count;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task<IReadOnlyList<StoredAudienceChange>> GetAudienceChangesAsync(AudienceChangeQuery query, CancellationToken cancellationToken)
    {
        var parameters = new List<object?>();
        var where = AudienceRows.ChangeFilter(query, value =>
        {
            parameters.Add(value);
            return $"${parameters.Count}";
        });
        parameters.Add(query.Limit);
        // Staged changes are taken first: one that commits meanwhile is then read twice (and kept once), never missed.
        var staged = StagedChanges(query);
        var stored = await ReadAllAsync($"SELECT {AudienceRows.ChangeColumns} FROM audience_changes WHERE {where} ORDER BY id LIMIT ${parameters.Count}",
            AudienceRows.ReadChange, cancellationToken, [.. parameters]);
        if (staged.Count == 0) { return stored; }
        return [.. stored.Concat(staged).DistinctBy(c => c.Id).OrderBy(c => c.Id).Take(query.Limit)];
    }

    public async Task<IReadOnlyList<AudienceSizeBucket>> GetAudienceSizeAsync(string audienceId, string bucket, CancellationToken cancellationToken) =>
        await ReadAllAsync(AudienceRows.SizeSql, AudienceRows.ReadSize, cancellationToken, audienceId, bucket);

    /// <summary>Stores changes (and any statements with them) in one transaction on the writer, then announces them. Called under the write lock.</summary>
    private async Task CommitAudiencesAsync(IReadOnlyList<AudienceChange> changes, string what, CancellationToken cancellationToken, params (string Sql, object?[] Parameters)[] statements)
    {
        var writer = _writer ?? throw new InvalidOperationException("The store is not open.");
        if (changes.Count == 0 && statements.Length == 0) { return; }
        // The writer is the committer's until what it holds is in: after that, nothing is staged while the lock is held.
        await DrainCommitsAsync();
        var numbered = NumberChanges(changes);
        try
        {
            using var transaction = writer.BeginTransaction();
            foreach (var (sql, parameters) in statements)
            {
                using var command = Command(writer, sql, parameters);
                await command.ExecuteNonQueryAsync(cancellationToken);
            }

            using (var tables = new TableAppenders(writer)) { AppendAudienceChanges(tables, numbered); }
            transaction.Commit();
            NoteCommitted(0, numbered.Count > 0 ? numbered[^1].Id : 0);
        }
        catch (DuckDBException e)
        {
            // The engine already holds the changes; rebuild it from what the file has.
            _engine.Clear();
            await RestoreProfilesAsync(CancellationToken.None);
            throw DuckDbErrors.Translate(e, what, options.Path);
        }

        Announce(changes);
    }

    /// <summary>Gives changes their ids in the change log, in order; called under the write lock.</summary>
    private List<(long Id, AudienceChange Change)> NumberChanges(IEnumerable<AudienceChange> changes) =>
        [.. changes.Select(c => (++_lastAudienceChange, c))];

    private static void AppendAudienceChanges(TableAppenders tables, List<(long Id, AudienceChange Change)> changes)
    {
        if (changes.Count == 0) { return; }
        var appender = tables.For("audience_changes");
        foreach (var (id, c) in changes)
        {
            appender.CreateRow()
                .AppendValue(id).AppendValue(c.AudienceId).AppendValue(c.ProfileId).AppendValue(c.Entered)
                .AppendValue(c.At).AppendValue(c.Seq).AppendValue(c.Reason)
                .EndRow();
        }
    }

    private void AnnounceStaged(IReadOnlyList<(long Id, AudienceChange Change)> changes)
    {
        if (changes.Count > 0 && AudienceStaged is { } staged) { staged([.. changes.Select(c => new StoredAudienceChange(c.Id, c.Change))]); }
    }

    private void Announce(IReadOnlyList<AudienceChange> changes)
    {
        if (changes.Count > 0) { AudienceChanged?.Invoke(changes); }
    }

    /// <summary>Loads the stored audiences and memberships into <paramref name="engine"/>, then records what changed while Tessera was down.</summary>
    private async Task RestoreAudiencesAsync(ProfileEngine engine, CancellationToken cancellationToken)
    {
        _lastAudienceChange = await ScalarAsync<long>("SELECT coalesce(max(id), 0) FROM audience_changes", cancellationToken);
        NoteCommitted(0, _lastAudienceChange);
        var audiences = await ReadAllAsync($"SELECT {AudienceRows.AudienceColumns} FROM audiences ORDER BY created_at, id", AudienceRows.ReadAudience, cancellationToken);
        if (audiences.Count == 0) { return; }
        foreach (var audience in audiences) { engine.DefineAudience(audience); }
        engine.RestoreMemberships(await ReadAllAsync(AudienceRows.CurrentMembers, r => (r.GetString(0), r.GetString(1)), cancellationToken));
        await BackfillAudiencesAsync(engine, [.. engine.AudienceEventNames], cancellationToken);
        await CommitAudiencesAsync(engine.EvaluateAudiences(null, "re-evaluated at start"), "record audience changes at start", cancellationToken);
    }

    /// <summary>After identities were rebuilt: the new engine takes the audiences and memberships over and records what the rebuild changed.</summary>
    private async Task TakeOverAudiencesAsync(ProfileEngine previous, ProfileEngine fresh, CancellationToken cancellationToken)
    {
        var audiences = previous.Audiences;
        if (audiences.Count == 0) { return; }
        foreach (var audience in audiences) { fresh.DefineAudience(audience); }
        fresh.RestoreMemberships(audiences.SelectMany(a => previous.Members(a.Id).Select(p => (a.Id, p))));
        await BackfillAudiencesAsync(fresh, [.. fresh.AudienceEventNames], cancellationToken);
        await CommitAudiencesAsync(fresh.EvaluateAudiences(null, "identities re-resolved"), "record audience changes after re-resolving", cancellationToken);
    }

    private async Task BackfillAudiencesAsync(ProfileEngine engine, string[] names, CancellationToken cancellationToken)
    {
        if (names.Length == 0) { return; }
        using var connection = OpenReader();
        using var command = Command(connection, $"SELECT {EventReader.Columns} FROM events WHERE type = 'track' AND profile_id IS NOT NULL AND event IN ({string.Join(", ", names.Select((_, i) => $"${i + 1}"))}) ORDER BY seq", names);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var chunk = new List<(string, long, Core.Collection.CollectedEvent)>(50_000);
        while (await reader.ReadAsync(cancellationToken))
        {
            var stored = EventReader.Read(reader, _raw);
            chunk.Add((stored.ProfileId!, stored.Seq, stored.Message));
            if (chunk.Count == chunk.Capacity)
            {
                engine.ObserveForAudiences(chunk);
                chunk.Clear();
            }
        }

        engine.ObserveForAudiences(chunk);
    }
}
