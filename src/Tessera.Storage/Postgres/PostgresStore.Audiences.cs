using Npgsql;
using NpgsqlTypes;
using Tessera.Core.Audiences;
using Tessera.Core.Profiles;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;

namespace Tessera.Storage.Postgres;

/// <summary>
/// Audiences on PostgreSQL. Changes are recorded under the resolution lock, in the transaction of their cause;
/// each process applies the entries and exits the others recorded (<see cref="SyncMembershipsAsync"/>) so a time
/// window that passes is recorded once, not once per process.
/// </summary>
public sealed partial class PostgresStore : IAudienceStore
{
    private const string AudienceCopyColumns = "COPY audience_changes (audience_id, profile_id, entered, occurred_at, seq, reason) FROM STDIN (FORMAT BINARY)";

    private long _appliedAudienceChange;

    public event Action<IReadOnlyList<AudienceChange>>? AudienceChanged;

    /// <summary>Never raised: changes are committed in the call that makes them, and <see cref="AudienceChanged"/> follows at once.</summary>
    public event Action<IReadOnlyList<StoredAudienceChange>>? AudienceStaged
    {
        add { }
        remove { }
    }

    public async Task<IReadOnlyList<AudienceChange>> SaveAudienceAsync(Audience audience, CancellationToken cancellationToken) =>
        await ChangeAudiencesAsync("save audience", async connection =>
        {
            await ExecuteAsync(
                connection,
                """
                INSERT INTO audiences (id, name, description, definition, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, definition = EXCLUDED.definition, updated_at = EXCLUDED.updated_at
                """,
                cancellationToken, audience.Id, audience.Name, audience.Description, AudienceRows.DefinitionJson(audience), audience.CreatedAt.ToUniversalTime(), audience.UpdatedAt.ToUniversalTime());
            var engine = Engine;
            var existed = engine.GetAudience(audience.Id) is not null;
            engine.DefineAudience(audience);
            await BackfillAudiencesAsync(connection, engine, AudienceRows.EventNames(audience, engine), cancellationToken);
            return engine.EvaluateAudiences(null, existed ? "audience changed" : "audience created");
        }, cancellationToken);

    public async Task<bool> DeleteAudienceAsync(string id, CancellationToken cancellationToken)
    {
        var deleted = false;
        await ChangeAudiencesAsync("delete audience", async connection =>
        {
            if (await ExecuteAsync(connection, "DELETE FROM audiences WHERE id = $1", cancellationToken, id) == 0) { return []; }
            deleted = true;
            return Engine.RemoveAudience(id);
        }, cancellationToken);
        return deleted;
    }

    public async Task<int> TickAudiencesAsync(CancellationToken cancellationToken)
    {
        if (!Engine.TryGetNextAudienceTick(out var next) || next is not { } due || due > Engine.Clock.GetUtcNow()) { return 0; }
        var changes = await ChangeAudiencesAsync("record audience changes", _ => Task.FromResult(Engine.TickAudiences()), cancellationToken, announceToOthers: false);
        return changes.Count;
    }

    public async Task<IReadOnlyList<StoredAudienceChange>> GetAudienceChangesAsync(AudienceChangeQuery query, CancellationToken cancellationToken) =>
        await RunAsync("read audience changes", connection =>
        {
            var parameters = new List<object?>();
            var where = AudienceRows.ChangeFilter(query, value =>
            {
                parameters.Add(value);
                return $"${parameters.Count}";
            });
            parameters.Add(query.Limit);
            return ReadAllAsync(connection, $"SELECT {AudienceRows.ChangeColumns} FROM audience_changes WHERE {where} ORDER BY id LIMIT ${parameters.Count}",
                AudienceRows.ReadChange, cancellationToken, [.. parameters]);
        }, cancellationToken);

    public async Task<IReadOnlyList<AudienceSizeBucket>> GetAudienceSizeAsync(string audienceId, string bucket, CancellationToken cancellationToken) =>
        await RunAsync("read audience size", connection => ReadAllAsync(connection, AudienceRows.SizeSql, AudienceRows.ReadSize, cancellationToken, audienceId, bucket), cancellationToken);

    /// <summary>
    /// An audience change made under the resolution lock with the engine caught up, recorded in one transaction with
    /// its entries and exits; a definition change also bumps the generation so the other processes reload.
    /// </summary>
    private async Task<IReadOnlyList<AudienceChange>> ChangeAudiencesAsync(
        string what, Func<NpgsqlConnection, Task<IReadOnlyList<AudienceChange>>> change, CancellationToken cancellationToken, bool announceToOthers = true)
    {
        var changes = await RunAsync(what, async connection =>
        {
            await _engineLock.WaitAsync(cancellationToken);
            try
            {
                await using var transaction = await BeginResolvingAsync(connection, cancellationToken);
                var changes = await change(connection);
                await CopyAudienceChangesAsync(connection, changes, cancellationToken);
                long? generation = announceToOthers
                    ? await ScalarAsync<long>(connection, "UPDATE identity_generation SET generation = generation + 1 RETURNING generation", cancellationToken)
                    : null;
                await transaction.CommitAsync(cancellationToken);
                if (generation is { } g) { _generation = g; }
                return changes;
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
        Announce(changes);
        return changes;
    }

    private static async Task CopyAudienceChangesAsync(NpgsqlConnection connection, IReadOnlyList<AudienceChange> changes, CancellationToken cancellationToken)
    {
        if (changes.Count == 0) { return; }
        await using var copy = await connection.BeginBinaryImportAsync(AudienceCopyColumns, cancellationToken);
        foreach (var c in changes)
        {
            await copy.StartRowAsync(cancellationToken);
            await copy.WriteAsync(c.AudienceId, NpgsqlDbType.Text, cancellationToken);
            await copy.WriteAsync(c.ProfileId, NpgsqlDbType.Text, cancellationToken);
            await copy.WriteAsync(c.Entered, NpgsqlDbType.Boolean, cancellationToken);
            await copy.WriteAsync(c.At.ToUniversalTime(), NpgsqlDbType.TimestampTz, cancellationToken);
            if (c.Seq is { } seq) { await copy.WriteAsync(seq, NpgsqlDbType.Bigint, cancellationToken); }
            else { await copy.WriteNullAsync(cancellationToken); }
            await copy.WriteAsync(c.Reason, NpgsqlDbType.Text, cancellationToken);
        }

        await copy.CompleteAsync(cancellationToken);
    }

    private void Announce(IReadOnlyList<AudienceChange> changes)
    {
        if (changes.Count > 0) { AudienceChanged?.Invoke(changes); }
    }

    /// <summary>Applies the entries and exits recorded since the last look (by any process) to the engine's memberships.</summary>
    private async Task SyncMembershipsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        if (Engine.Audiences.Count == 0) { return; }
        await foreach (var recorded in PagesAsync(
            connection, $"SELECT id, audience_id, profile_id, entered FROM audience_changes WHERE id > $1 ORDER BY id LIMIT {ReplayPage}",
            r => (Id: r.GetInt64(0), Audience: r.GetString(1), Profile: r.GetString(2), Entered: r.GetBoolean(3)), r => r.Id, _appliedAudienceChange, cancellationToken))
        {
            Engine.ApplyRecordedChanges(recorded.Select(r => (r.Audience, r.Profile, r.Entered)));
            _appliedAudienceChange = recorded[^1].Id;
        }
    }

    /// <summary>Loads the stored audiences and memberships into <paramref name="engine"/> and records what changed meanwhile (in the caller's transaction).</summary>
    private async Task RestoreAudiencesAsync(NpgsqlConnection connection, ProfileEngine engine, CancellationToken cancellationToken)
    {
        _appliedAudienceChange = await ScalarAsync<long>(connection, "SELECT coalesce(max(id), 0) FROM audience_changes", cancellationToken);
        var audiences = await ReadAllAsync(connection, $"SELECT {AudienceRows.AudienceColumns} FROM audiences ORDER BY created_at, id", AudienceRows.ReadAudience, cancellationToken);
        if (audiences.Count == 0) { return; }
        foreach (var audience in audiences) { engine.DefineAudience(audience); }
        engine.RestoreMemberships(await ReadAllAsync(connection, AudienceRows.CurrentMembers, r => (r.GetString(0), r.GetString(1)), cancellationToken));
        await BackfillAudiencesAsync(connection, engine, [.. engine.AudienceEventNames], cancellationToken);
        var changes = engine.EvaluateAudiences(null, "re-evaluated at start");
        await CopyAudienceChangesAsync(connection, changes, cancellationToken);
        Announce(changes);
    }

    /// <summary>After identities were rebuilt: the new engine takes over the audiences and memberships; the changes are copied in the rebuild's transaction.</summary>
    private async Task<IReadOnlyList<AudienceChange>> TakeOverAudiencesAsync(NpgsqlConnection connection, ProfileEngine previous, ProfileEngine fresh, CancellationToken cancellationToken)
    {
        var audiences = previous.Audiences;
        if (audiences.Count == 0) { return []; }
        foreach (var audience in audiences) { fresh.DefineAudience(audience); }
        fresh.RestoreMemberships(audiences.SelectMany(a => previous.Members(a.Id).Select(p => (a.Id, p))));
        await BackfillAudiencesAsync(connection, fresh, [.. fresh.AudienceEventNames], cancellationToken);
        var changes = fresh.EvaluateAudiences(null, "identities re-resolved");
        await CopyAudienceChangesAsync(connection, changes, cancellationToken);
        return changes;
    }

    private static async Task BackfillAudiencesAsync(NpgsqlConnection connection, ProfileEngine engine, string[] names, CancellationToken cancellationToken)
    {
        if (names.Length == 0) { return; }
        var rows = await ReadAllAsync(
            connection, $"SELECT {EventReader.Columns} FROM events WHERE type = 'track' AND profile_id IS NOT NULL AND event = ANY($1) ORDER BY seq",
            r => EventReader.Read(r), cancellationToken, (object)names);
        engine.ObserveForAudiences(rows.Select(r => (r.ProfileId!, r.Seq, r.Message)));
    }
}
