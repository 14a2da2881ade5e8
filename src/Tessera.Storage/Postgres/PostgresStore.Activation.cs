using Npgsql;
using Tessera.Core.Activation;
using Tessera.Storage.Activation;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;

namespace Tessera.Storage.Postgres;

/// <summary>
/// Activation on PostgreSQL, shared by every process on the database: derivation takes the cursor row with
/// <c>FOR UPDATE SKIP LOCKED</c> (one process derives at a time, the others skip the turn), deliveries are unique by
/// idempotency key, and sending claims rows with <c>FOR UPDATE SKIP LOCKED</c> and a lease, so two processes never
/// send the same delivery at once and a crashed process's claims pass to the others when the lease ends.
/// </summary>
public sealed partial class PostgresStore : IActivationStore
{
    /// <summary>
    /// How long a hole in the audience change ids may be waited for. Changes are written under the resolution lock
    /// (so ids commit in order) except those a process records while reloading its engine; a hole below a committed
    /// id is such a transaction still running, or a rolled-back one, which never fills: after this, it is passed.
    /// </summary>
    private static readonly TimeSpan ChangeGapWait = TimeSpan.FromSeconds(2);

    private readonly ChangeGap _changeGap = new();

    public async Task<IReadOnlyList<StoredDestination>> ListDestinationsAsync(CancellationToken cancellationToken) =>
        await RunAsync("list destinations", connection => ReadAllAsync(
            connection, $"SELECT {ActivationRows.DestinationColumns} FROM destinations ORDER BY created_at, id", ActivationRows.ReadDestination, cancellationToken), cancellationToken);

    public async Task<StoredDestination?> GetDestinationAsync(string id, CancellationToken cancellationToken) =>
        (await RunAsync("read destination", connection => ReadAllAsync(
            connection, $"SELECT {ActivationRows.DestinationColumns} FROM destinations WHERE id = $1", ActivationRows.ReadDestination, cancellationToken, id), cancellationToken)).FirstOrDefault();

    public async Task SaveDestinationAsync(Destination destination, CancellationToken cancellationToken) =>
        await RunAsync("save destination", connection => ExecuteAsync(connection, """
            INSERT INTO destinations (id, name, type, config, created_at, updated_at, after_change_id, after_seq)
            VALUES ($1, $2, $3, $4, $5, $6, (SELECT coalesce(max(id), 0) FROM audience_changes), (SELECT coalesce(max(seq), 0) FROM events))
            ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, type = EXCLUDED.type, config = EXCLUDED.config, updated_at = EXCLUDED.updated_at
            """, cancellationToken, destination.Id, destination.Name, destination.Type, ActivationRows.ConfigJson(destination),
            destination.CreatedAt.ToUniversalTime(), destination.UpdatedAt.ToUniversalTime()), cancellationToken);

    public async Task<bool> DeleteDestinationAsync(string id, CancellationToken cancellationToken) =>
        await RunAsync("delete destination", async connection =>
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            if (await ExecuteAsync(connection, "DELETE FROM destinations WHERE id = $1", cancellationToken, id) == 0) { return false; }
            await ExecuteAsync(connection, "UPDATE deliveries SET status = 'cancelled', reason = 'destination deleted', updated_at = now() WHERE destination_id = $1 AND status = 'pending'", cancellationToken, id);
            await transaction.CommitAsync(cancellationToken);
            return true;
        }, cancellationToken);

    public async Task<DerivationResult> DeriveDeliveriesAsync(IDeliveryDeriver deriver, DeliveryClaim claim, Action<IReadOnlyList<Delivery>>? beforeCommit, CancellationToken cancellationToken) =>
        await RunAsync("derive deliveries", async connection =>
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            var cursors = await ReadAllAsync(connection, "SELECT change_id, seq FROM activation_cursor FOR UPDATE SKIP LOCKED", r => new ActivationCursor(r.GetInt64(0), r.GetInt64(1)), cancellationToken);
            if (cursors.Count == 0) { return new DerivationResult([], 0, More: false, Busy: true); }
            var cursor = cursors[0];
            var destinations = await ReadAllAsync(connection, $"SELECT {ActivationRows.DestinationColumns} FROM destinations ORDER BY created_at, id", ActivationRows.ReadDestination, cancellationToken);

            var (changes, changeUpTo, moreChanges) = await ReadChangesAsync(connection, cursor.ChangeId, claim.Now, _changeGap, cancellationToken);
            if (!destinations.Any(d => d.Destination.Segments.Count > 0)) { changes = []; }

            // Seqs are allocated and committed under the resolution lock, so every seq below a visible one is visible.
            var lastSeq = await ScalarAsync<long?>(connection, "SELECT max(seq) FROM events", cancellationToken) ?? 0;
            lastSeq = Math.Max(lastSeq, cursor.Seq);
            var seqUpTo = Math.Min(lastSeq, cursor.Seq + ActivationRows.EventStep);
            List<StoredEvent> events = [];
            if (seqUpTo > cursor.Seq)
            {
                var parameters = new List<object?> { cursor.Seq, seqUpTo };
                var condition = ActivationRows.EventCondition(deriver.Interest(destinations), value =>
                {
                    parameters.Add(value);
                    return $"${parameters.Count}";
                });
                events = await ReadAllAsync(connection, $"SELECT {EventReader.Columns} FROM events WHERE seq > $1 AND seq <= $2 AND profile_id IS NOT NULL AND {condition} ORDER BY seq",
                    r => EventReader.Read(r), cancellationToken, [.. parameters]);
            }

            var profiles = deriver.ConsentProfiles(destinations, changes, events).Concat(ActivationRows.ConsentStaters(events)).ToHashSet(StringComparer.Ordinal);
            var known = (await ReadConsentAsync(connection, profiles, cancellationToken)).ToDictionary(c => (c.ProfileId, c.Category));
            var consentRows = ActivationRows.ConsentChanges(events, known);
            if (consentRows.Count > 0)
            {
                await ExecuteAsync(connection, """
                    INSERT INTO consent_changes (seq, profile_id, category, granted, occurred_at)
                    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::boolean[], $5::timestamptz[])
                    """, cancellationToken, consentRows.Select(c => c.Seq).ToArray(), consentRows.Select(c => c.ProfileId).ToArray(),
                    consentRows.Select(c => c.Category).ToArray(), consentRows.Select(c => c.Granted).ToArray(), consentRows.Select(c => c.At.UtcDateTime).ToArray());
            }

            var recent = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
            var causes = ActivationRows.CauseProfiles(changes, events);
            foreach (var (id, since) in ActivationRows.Capped(destinations, claim.Now))
            {
                recent[id] = causes.Count == 0 ? [] : (await ReadAllAsync(connection, ActivationRows.CapCounts("= ANY($3)"), r => (r.GetString(0), r.GetInt64(1)),
                    cancellationToken, id, since.UtcDateTime, causes.ToArray())).ToDictionary(c => c.Item1, c => (int)c.Item2, StringComparer.Ordinal);
            }

            var derived = deriver.Derive(new DerivationInput(destinations, changes, events, [.. known.Values], recent));
            var pending = new List<Delivery>();
            if (derived.Count > 0)
            {
                var ids = new Dictionary<string, long>(StringComparer.Ordinal);
                await using (var insert = Command(connection, """
                    INSERT INTO deliveries (destination_id, profile_id, kind, cause_id, idempotency_key, payload, status, reason, attempts, next_attempt_at, claimed_by, claimed_until, created_at, updated_at)
                    SELECT d, p, k, c, i, pl, s, r, 0, CASE WHEN s = 'pending' THEN t END, CASE WHEN s = 'pending' THEN $9 END, CASE WHEN s = 'pending' THEN $10::timestamptz END, t, t
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $11::timestamptz[]) AS u(d, p, k, c, i, pl, s, r, t)
                    ON CONFLICT (idempotency_key) DO NOTHING
                    RETURNING id, idempotency_key
                    """, [derived.Select(d => d.DestinationId).ToArray(), derived.Select(d => d.ProfileId).ToArray(), derived.Select(d => d.Kind).ToArray(),
                        derived.Select(d => d.CauseId).ToArray(), derived.Select(d => d.IdempotencyKey).ToArray(), derived.Select(d => d.Payload).ToArray(),
                        derived.Select(d => d.Status).ToArray(), derived.Select(d => d.Reason).ToArray(), claim.Owner, claim.Until.UtcDateTime,
                        derived.Select(d => d.CreatedAt.UtcDateTime).ToArray()]))
                await using (var reader = await insert.ExecuteReaderAsync(cancellationToken))
                {
                    while (await reader.ReadAsync(cancellationToken)) { ids[reader.GetString(1)] = reader.GetInt64(0); }
                }

                foreach (var d in derived)
                {
                    // A key already there was derived before (a replayed step): it is not sent again from here.
                    if (d.Status == DeliveryStatus.Pending && ids.TryGetValue(d.IdempotencyKey, out var id))
                    {
                        pending.Add(new Delivery(id, d.DestinationId, d.ProfileId, d.Kind, d.CauseId, d.IdempotencyKey, d.Payload, d.Status, d.Reason, 0, d.CreatedAt, null, d.CreatedAt, d.CreatedAt, null));
                    }
                }
            }

            await ExecuteAsync(connection, "UPDATE activation_cursor SET change_id = $1, seq = $2", cancellationToken, changeUpTo, seqUpTo);
            if (pending.Count > 0) { beforeCommit?.Invoke(pending); }
            await transaction.CommitAsync(cancellationToken);
            return new DerivationResult(pending, derived.Count, moreChanges || lastSeq > seqUpTo);
        }, cancellationToken);

    /// <summary>The changes after <paramref name="after"/> up to the first hole that may still fill (see <see cref="ChangeGapWait"/>).</summary>
    private async Task<(IReadOnlyList<StoredAudienceChange> Changes, long UpTo, bool More)> ReadChangesAsync(
        NpgsqlConnection connection, long after, DateTimeOffset now, ChangeGap gapSeen, CancellationToken cancellationToken)
    {
        var rows = await ReadAllAsync(connection, $"SELECT {AudienceRows.ChangeColumns} FROM audience_changes WHERE id > $1 ORDER BY id LIMIT {ActivationRows.ChangeStep}",
            AudienceRows.ReadChange, cancellationToken, after);
        var upTo = after;
        var taken = 0;
        foreach (var row in rows)
        {
            if (row.Id != upTo + 1)
            {
                if (gapSeen.Hole is not { } gap || gap.Id != upTo + 1)
                {
                    gapSeen.Hole = (upTo + 1, now);
                    break;
                }

                if (now - gap.Since < ChangeGapWait) { break; }
            }

            upTo = row.Id;
            taken++;
        }

        return (rows.Take(taken).ToList(), upTo, taken < rows.Count || rows.Count == ActivationRows.ChangeStep);
    }

    public async Task<IReadOnlyList<Delivery>> ClaimDueDeliveriesAsync(DeliveryClaim claim, int limit, CancellationToken cancellationToken)
    {
        var claimed = await RunAsync("claim deliveries", connection => ReadAllAsync(connection, $"""
            UPDATE deliveries SET claimed_by = $1, claimed_until = $2 WHERE id IN (
                SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $3 AND (claimed_until IS NULL OR claimed_until < $3)
                ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
            RETURNING {ActivationRows.DeliveryColumns}
            """, ActivationRows.ReadDelivery, cancellationToken, claim.Owner, claim.Until.UtcDateTime, claim.Now.UtcDateTime, limit), cancellationToken);
        claimed.Sort((a, b) => a.Id.CompareTo(b.Id));
        return claimed;
    }

    public async Task ReleaseClaimsAsync(string? owner, CancellationToken cancellationToken)
    {
        // Other processes may hold live claims on a shared database: only a named owner's claims are released here.
        if (owner is null) { return; }
        await RunAsync("release claims", connection => ExecuteAsync(connection,
            "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL WHERE status = 'pending' AND claimed_by = $1", cancellationToken, owner), cancellationToken);
    }

    public async Task RecordOutcomesAsync(string owner, IReadOnlyList<DeliveryOutcome> outcomes, CancellationToken cancellationToken)
    {
        if (outcomes.Count == 0) { return; }
        await RunAsync("record delivery outcomes", connection => ExecuteAsync(connection, ActivationSql.RecordOutcomes(
            "unnest($2::bigint[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::timestamptz[], $8::timestamptz[], $9::text[]) AS u(id, idempotency_key, status, attempted, error, next_at, done_at, payload)"),
            cancellationToken, owner, outcomes.Select(o => o.Id).ToArray(), outcomes.Select(o => o.IdempotencyKey).ToArray(), outcomes.Select(o => o.Status).ToArray(), outcomes.Select(o => o.Attempted).ToArray(),
            outcomes.Select(o => o.Error).ToArray(), outcomes.Select(o => o.NextAttemptAt?.UtcDateTime).ToArray(), outcomes.Select(o => o.At.UtcDateTime).ToArray(), outcomes.Select(o => o.Payload).ToArray()), cancellationToken);
    }

    public async Task<DateTimeOffset?> NextDueAsync(CancellationToken cancellationToken) =>
        await RunAsync("next due delivery", async connection =>
        {
            var value = await Command(connection, "SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'", []).ExecuteScalarAsync(cancellationToken);
            return value is DateTime time ? new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc)) : (DateTimeOffset?)null;
        }, cancellationToken);

    public async Task<IReadOnlyList<Delivery>> QueryDeliveriesAsync(DeliveryQuery query, CancellationToken cancellationToken) =>
        await RunAsync("read deliveries", connection =>
        {
            var parameters = new List<object?>();
            var where = ActivationSql.DeliveryFilter(query, value =>
            {
                parameters.Add(value);
                return $"${parameters.Count}";
            }, ids => $"= ANY({ids})");
            parameters.Add(query.Limit);
            return ReadAllAsync(connection, $"SELECT {ActivationRows.DeliveryColumns} FROM deliveries WHERE {where} ORDER BY id DESC LIMIT ${parameters.Count}",
                ActivationRows.ReadDelivery, cancellationToken, [.. parameters]);
        }, cancellationToken);

    public async Task<IReadOnlyList<long>> ReplayDeadLettersAsync(string destinationId, IReadOnlyCollection<long>? ids, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var replayed = await RunAsync("replay dead letters", connection => ids is null
            ? ReadAllAsync(connection, $"{ActivationSql.Replay} RETURNING id", r => r.GetInt64(0), cancellationToken, destinationId, now.UtcDateTime)
            : ReadAllAsync(connection, $"{ActivationSql.Replay} AND id = ANY($3) RETURNING id", r => r.GetInt64(0), cancellationToken, destinationId, now.UtcDateTime, ids.ToArray()), cancellationToken);
        replayed.Sort();
        return replayed;
    }

    public async Task<IReadOnlyList<ConsentState>> GetConsentAsync(IReadOnlyCollection<string> profileIds, CancellationToken cancellationToken) =>
        await RunAsync("read consent", connection => ReadConsentAsync(connection, profileIds, cancellationToken), cancellationToken);

    private static async Task<List<ConsentState>> ReadConsentAsync(NpgsqlConnection connection, IReadOnlyCollection<string> profileIds, CancellationToken cancellationToken) =>
        profileIds.Count == 0
            ? []
            : await ReadAllAsync(connection, """
                SELECT DISTINCT ON (profile_id, category) profile_id, category, granted, seq, occurred_at FROM consent_changes
                WHERE profile_id = ANY($1) ORDER BY profile_id, category, seq DESC
                """, ActivationRows.ReadConsent, cancellationToken, (object)profileIds.ToArray());

    /// <summary>The hole in the change ids a reader of the log (a cursor) is waiting at, and since when.</summary>
    private sealed class ChangeGap
    {
        public (long Id, DateTimeOffset Since)? Hole { get; set; }
    }
}
