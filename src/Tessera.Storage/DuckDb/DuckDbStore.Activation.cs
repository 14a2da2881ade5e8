using DuckDB.NET.Data;
using Tessera.Core.Activation;
using Tessera.Storage.Activation;
using Tessera.Storage.Audiences;
using Tessera.Storage.Audiences.Dialects;
using Tessera.Storage.Events;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// Activation on DuckDB: the outbox and its log beside the other tables. The append path is untouched: deliveries
/// are derived after the fact from the audience change log and the event log, behind the cursor in
/// <c>activation_cursor</c>. Every activation write runs under <see cref="_activationLock"/> on a connection of its
/// own (they touch tables the event writer never writes, so the two never conflict).
/// </summary>
public sealed partial class DuckDbStore : IActivationStore
{
    private readonly SemaphoreSlim _activationLock = new(1, 1);
    private long _lastDeliveryId = -1;

    public async Task<IReadOnlyList<StoredDestination>> ListDestinationsAsync(CancellationToken cancellationToken) =>
        await ReadAllAsync($"SELECT {ActivationRows.DestinationColumns} FROM destinations ORDER BY created_at, id", ActivationRows.ReadDestination, cancellationToken);

    public async Task<StoredDestination?> GetDestinationAsync(string id, CancellationToken cancellationToken) =>
        (await ReadAllAsync($"SELECT {ActivationRows.DestinationColumns} FROM destinations WHERE id = $1", ActivationRows.ReadDestination, cancellationToken, id)).FirstOrDefault();

    public async Task SaveDestinationAsync(Destination destination, CancellationToken cancellationToken)
    {
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            await WriteAheadCursorsAsync(cancellationToken);
            _noDestinations = null;
            var config = ActivationRows.ConfigJson(destination);
            var updated = await ExecuteAsync("UPDATE destinations SET name = $2, type = $3, config = $4, updated_at = $5 WHERE id = $1", cancellationToken,
                destination.Id, destination.Name, destination.Type, config, destination.UpdatedAt);
            if (updated > 0) { return; }
            // A new destination hears of what happens from now on: it starts at the current end of both logs.
            var afterChange = await ScalarAsync<long>("SELECT coalesce(max(id), 0) FROM audience_changes", cancellationToken);
            var afterSeq = await ScalarAsync<long>("SELECT coalesce(max(seq), 0) FROM events", cancellationToken);
            await ExecuteAsync("INSERT INTO destinations VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", cancellationToken,
                destination.Id, destination.Name, destination.Type, config, destination.CreatedAt, destination.UpdatedAt, afterChange, afterSeq);
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task<bool> DeleteDestinationAsync(string id, CancellationToken cancellationToken)
    {
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            await WriteAheadCursorsAsync(cancellationToken);
            _noDestinations = null;
            if (await ExecuteAsync("DELETE FROM destinations WHERE id = $1", cancellationToken, id) == 0) { return false; }
            await ExecuteAsync("UPDATE deliveries SET status = 'cancelled', reason = 'destination deleted', updated_at = $2 WHERE destination_id = $1 AND status = 'pending'",
                cancellationToken, id, DateTimeOffset.UtcNow);
            return true;
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task<DerivationResult> DeriveDeliveriesAsync(IDeliveryDeriver deriver, DeliveryClaim claim, Action<IReadOnlyList<Delivery>>? beforeCommit, CancellationToken cancellationToken)
    {
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            if (SkipQuietActivationStep()) { return new DerivationResult([], 0, false); }
            using var connection = OpenReader();
            await LoadDeliveryIdsAsync(connection, cancellationToken);
            using var transaction = connection.BeginTransaction();
            var cursor = _activationAt.From((await ReadOnAsync(connection, "SELECT change_id, seq FROM activation_cursor", r => new ActivationCursor(r.GetInt64(0), r.GetInt64(1)), cancellationToken))[0]);
            var destinations = await ReadOnAsync(connection, $"SELECT {ActivationRows.DestinationColumns} FROM destinations ORDER BY created_at, id", ActivationRows.ReadDestination, cancellationToken);

            // Bounded steps; the upper bounds come from this transaction's snapshot, so nothing below them can still appear.
            var lastChange = await ScalarOnAsync<long?>(connection, "SELECT max(id) FROM audience_changes WHERE id > $1", cancellationToken, cursor.ChangeId) ?? cursor.ChangeId;
            var changeUpTo = Math.Min(lastChange, cursor.ChangeId + ActivationRows.ChangeStep);
            var lastSeq = await ScalarOnAsync<long?>(connection, "SELECT max(seq) FROM events WHERE seq > $1", cancellationToken, cursor.Seq) ?? cursor.Seq;
            var seqUpTo = Math.Min(lastSeq, cursor.Seq + ActivationRows.EventStep);

            List<StoredAudienceChange> changes = changeUpTo > cursor.ChangeId && destinations.Any(d => d.Destination.Segments.Count > 0)
                ? await ReadOnAsync(connection, $"SELECT {AudienceRows.ChangeColumns} FROM audience_changes WHERE id > $1 AND id <= $2 ORDER BY id", AudienceRows.ReadChange, cancellationToken, cursor.ChangeId, changeUpTo)
                : [];
            List<StoredEvent> events = [];
            if (seqUpTo > cursor.Seq)
            {
                var parameters = new List<object?> { cursor.Seq, seqUpTo };
                var condition = ActivationRows.EventCondition(deriver.Interest(destinations), rawText: DuckDbAudienceDialect.Instance.RawText("raw"), bind: value =>
                {
                    parameters.Add(value);
                    return $"${parameters.Count}";
                });
                events = await ReadOnAsync(connection, $"SELECT {EventReader.Columns} FROM events WHERE seq > $1 AND seq <= $2 AND profile_id IS NOT NULL AND {condition} ORDER BY seq",
                    r => EventReader.Read(r, _raw), cancellationToken, [.. parameters]);
            }

            // Consent first: the preferences stated up to this step count for the deliveries it derives.
            var profiles = deriver.ConsentProfiles(destinations, changes, events).Concat(ActivationRows.ConsentStaters(events)).ToHashSet(StringComparer.Ordinal);
            var known = (await ReadConsentOnAsync(connection, profiles, cancellationToken)).ToDictionary(c => (c.ProfileId, c.Category));
            var consentRows = ActivationRows.ConsentChanges(events, known);
            if (consentRows.Count > 0)
            {
                using var appender = connection.CreateAppender("consent_changes");
                foreach (var c in consentRows) { appender.CreateRow().AppendValue(c.Seq).AppendValue(c.ProfileId).AppendValue(c.Category).AppendValue(c.Granted).AppendValue(c.At).EndRow(); }
                appender.Close();
            }

            var recent = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
            var causes = ActivationRows.CauseProfiles(changes, events);
            foreach (var (id, since) in ActivationRows.Capped(destinations, claim.Now))
            {
                recent[id] = causes.Count == 0 ? [] : (await ReadOnAsync(connection, ActivationRows.CapCounts("IN (SELECT unnest($3))"), r => (r.GetString(0), r.GetInt64(1)),
                    cancellationToken, id, since, causes)).ToDictionary(c => c.Item1, c => (int)c.Item2, StringComparer.Ordinal);
            }

            var derived = deriver.Derive(new DerivationInput(destinations, changes, events, [.. known.Values], recent));
            var pending = new List<Delivery>();
            if (derived.Count > 0)
            {
                using var appender = connection.CreateAppender("deliveries");
                foreach (var d in derived)
                {
                    var id = ++_lastDeliveryId;
                    var isPending = d.Status == DeliveryStatus.Pending;
                    // Typed as int? on purpose: a bare 0 binds to the appender's one-byte overload, and the INTEGER column
                    // then holds three bytes of garbage (attempts = 1862847233).
                    appender.CreateRow()
                        .AppendValue(id).AppendValue(d.DestinationId).AppendValue(d.ProfileId).AppendValue(d.Kind).AppendValue(d.CauseId).AppendValue(d.IdempotencyKey)
                        .AppendValue(d.Payload).AppendValue(d.Status).AppendValue(d.Reason).AppendValue((int?)0).AppendValue(isPending ? d.CreatedAt : (DateTimeOffset?)null)
                        .AppendValue((string?)null).AppendValue(isPending ? claim.Owner : null).AppendValue(isPending ? claim.Until : (DateTimeOffset?)null)
                        .AppendValue(d.CreatedAt).AppendValue(d.CreatedAt).AppendValue((DateTimeOffset?)null)
                        .EndRow();
                    if (isPending)
                    {
                        pending.Add(new Delivery(id, d.DestinationId, d.ProfileId, d.Kind, d.CauseId, d.IdempotencyKey, d.Payload, d.Status, d.Reason, 0, d.CreatedAt, null, d.CreatedAt, d.CreatedAt, null));
                    }
                }

                appender.Close();
            }

            // A step that read no change and no event wrote nothing: its position stays in memory (DerivationPosition).
            var read = changes.Count > 0 || events.Count > 0;
            if (read)
            {
                using var move = Command(connection, "UPDATE activation_cursor SET change_id = $1, seq = $2", [changeUpTo, seqUpTo]);
                await move.ExecuteNonQueryAsync(cancellationToken);
            }

            if (pending.Count > 0) { beforeCommit?.Invoke(pending); }
            transaction.Commit();
            _activationAt.Moved(new ActivationCursor(changeUpTo, seqUpTo), written: read);
            _noDestinations = destinations.Count == 0;
            return new DerivationResult(pending, derived.Count, lastChange > changeUpTo || lastSeq > seqUpTo);
        }
        catch (DuckDBException e)
        {
            // Nothing of this step was stored and the cursor did not move: the next step derives it again.
            _lastDeliveryId = -1;
            throw DuckDbErrors.Translate(e, "derive deliveries", options.Path);
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task<IReadOnlyList<Delivery>> ClaimDueDeliveriesAsync(DeliveryClaim claim, int limit, CancellationToken cancellationToken)
    {
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            var claimed = await ReadAllAsync($"""
                UPDATE deliveries SET claimed_by = $1, claimed_until = $2 WHERE id IN (
                    SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $3 AND (claimed_until IS NULL OR claimed_until < $3)
                    ORDER BY next_attempt_at, id LIMIT $4)
                RETURNING {ActivationRows.DeliveryColumns}
                """, ActivationRows.ReadDelivery, cancellationToken, claim.Owner, claim.Until, claim.Now, limit);
            claimed.Sort((a, b) => a.Id.CompareTo(b.Id));
            return claimed;
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task ReleaseClaimsAsync(string? owner, CancellationToken cancellationToken)
    {
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            await ExecuteAsync(owner is null
                ? "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL WHERE status = 'pending' AND claimed_by IS NOT NULL"
                : "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL WHERE status = 'pending' AND claimed_by = $1", cancellationToken, owner is null ? [] : [owner]);
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task RecordOutcomesAsync(string owner, IReadOnlyList<DeliveryOutcome> outcomes, CancellationToken cancellationToken)
    {
        if (outcomes.Count == 0) { return; }
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            using var connection = OpenReader();
            using var transaction = connection.BeginTransaction();
            using (var create = Command(connection, "CREATE OR REPLACE TEMP TABLE delivery_outcomes (id BIGINT, idempotency_key VARCHAR, status VARCHAR, attempted BOOLEAN, error VARCHAR, next_at TIMESTAMPTZ, done_at TIMESTAMPTZ, payload VARCHAR)", []))
            {
                await create.ExecuteNonQueryAsync(cancellationToken);
            }

            using (var appender = connection.CreateAppender("delivery_outcomes"))
            {
                foreach (var o in outcomes)
                {
                    appender.CreateRow().AppendValue(o.Id).AppendValue(o.IdempotencyKey).AppendValue(o.Status).AppendValue(o.Attempted).AppendValue(o.Error).AppendValue(o.NextAttemptAt).AppendValue(o.At).AppendValue(o.Payload).EndRow();
                }

                appender.Close();
            }

            using (var update = Command(connection, ActivationSql.RecordOutcomes("delivery_outcomes AS u"), [owner]))
            {
                await update.ExecuteNonQueryAsync(cancellationToken);
            }

            transaction.Commit();
        }
        catch (DuckDBException e)
        {
            throw DuckDbErrors.Translate(e, "record delivery outcomes", options.Path);
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task<DateTimeOffset?> NextDueAsync(CancellationToken cancellationToken) =>
        await ScalarAsync<DateTimeOffset?>("SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'", cancellationToken);

    public async Task<IReadOnlyList<Delivery>> QueryDeliveriesAsync(DeliveryQuery query, CancellationToken cancellationToken)
    {
        var parameters = new List<object?>();
        var where = ActivationSql.DeliveryFilter(query, value =>
        {
            parameters.Add(value);
            return $"${parameters.Count}";
        }, ids => $"IN (SELECT unnest({ids}))");
        parameters.Add(query.Limit);
        return await ReadAllAsync($"SELECT {ActivationRows.DeliveryColumns} FROM deliveries WHERE {where} ORDER BY id DESC LIMIT ${parameters.Count}",
            ActivationRows.ReadDelivery, cancellationToken, [.. parameters]);
    }

    public async Task<IReadOnlyList<long>> ReplayDeadLettersAsync(string destinationId, IReadOnlyCollection<long>? ids, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            var only = ids is null ? "" : " AND id IN (SELECT unnest($3))";
            object?[] parameters = ids is null ? [destinationId, now] : [destinationId, now, ids.ToList()];
            var replayed = await ReadAllAsync($"{ActivationSql.Replay}{only} RETURNING id", r => r.GetInt64(0), cancellationToken, parameters);
            replayed.Sort();
            return replayed;
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task<IReadOnlyList<ConsentState>> GetConsentAsync(IReadOnlyCollection<string> profileIds, CancellationToken cancellationToken)
    {
        using var connection = OpenReader();
        return await ReadConsentOnAsync(connection, profileIds, cancellationToken);
    }

    private async Task<List<ConsentState>> ReadConsentOnAsync(DuckDBConnection connection, IReadOnlyCollection<string> profileIds, CancellationToken cancellationToken) =>
        profileIds.Count == 0
            ? []
            : await ReadOnAsync(connection, """
                SELECT profile_id, category, arg_max(granted, seq), max(seq), arg_max(occurred_at, seq) FROM consent_changes
                WHERE profile_id IN (SELECT unnest($1)) GROUP BY profile_id, category
                """, ActivationRows.ReadConsent, cancellationToken, profileIds.ToList());

    private async Task LoadDeliveryIdsAsync(DuckDBConnection connection, CancellationToken cancellationToken)
    {
        if (_lastDeliveryId >= 0) { return; }
        _lastDeliveryId = await ScalarOnAsync<long?>(connection, "SELECT max(id) FROM deliveries", cancellationToken) ?? 0;
    }

    private static async Task<List<T>> ReadOnAsync<T>(DuckDBConnection connection, string sql, Func<System.Data.Common.DbDataReader, T> read, CancellationToken cancellationToken, params object?[] parameters)
    {
        using var command = Command(connection, sql, parameters);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken)) { rows.Add(read(reader)); }
        return rows;
    }

    private static async Task<T?> ScalarOnAsync<T>(DuckDBConnection connection, string sql, CancellationToken cancellationToken, params object?[] parameters)
    {
        using var command = Command(connection, sql, parameters);
        var value = await command.ExecuteScalarAsync(cancellationToken);
        return value is null or DBNull ? default : (T)Convert.ChangeType(value, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }
}
