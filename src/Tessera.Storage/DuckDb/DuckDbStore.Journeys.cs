using DuckDB.NET.Data;
using Tessera.Core.Journeys;
using Tessera.Storage.Activation;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;
using Tessera.Storage.Journeys;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// Journeys on DuckDB. Every journey write runs under the activation lock (it writes deliveries, whose ids this
/// process allocates), on a connection of its own; the event writer never touches these tables.
/// </summary>
public sealed partial class DuckDbStore : IJourneyStore
{
    private long _lastPositionId = -1;
    private long _lastHistoryId = -1;

    public async Task<IReadOnlyList<StoredJourney>> ListJourneysAsync(CancellationToken cancellationToken) =>
        await ReadAllAsync($"{JourneyRows.SelectJourneys} ORDER BY j.created_at, j.id", JourneyRows.ReadJourney, cancellationToken);

    public async Task<StoredJourney?> GetJourneyAsync(string id, CancellationToken cancellationToken) =>
        (await ReadAllAsync($"{JourneyRows.SelectJourneys} AND j.id = $1", JourneyRows.ReadJourney, cancellationToken, id)).FirstOrDefault();

    public async Task SaveJourneyAsync(Journey journey, bool startEntries, CancellationToken cancellationToken)
    {
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            await WriteAheadCursorsAsync(cancellationToken);
            _noJourneys = null;
            using var connection = OpenReader();
            using var transaction = connection.BeginTransaction();
            var changeEnd = await ScalarOnAsync<long>(connection, "SELECT coalesce(max(id), 0) FROM audience_changes", cancellationToken);
            var seqEnd = await ScalarOnAsync<long>(connection, "SELECT coalesce(max(seq), 0) FROM events", cancellationToken);
            var updated = await ExecuteOnAsync(connection, """
                UPDATE journeys SET name = $2, description = $3, status = $4, version = $5, updated_at = $6,
                    after_change_id = CASE WHEN $7 THEN $8 ELSE after_change_id END, after_seq = CASE WHEN $7 THEN $9 ELSE after_seq END
                WHERE id = $1
                """, cancellationToken, journey.Id, journey.Name, journey.Description, journey.Status, journey.Version, journey.UpdatedAt, startEntries, changeEnd, seqEnd);
            if (updated == 0)
            {
                await ExecuteOnAsync(connection, "INSERT INTO journeys VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", cancellationToken,
                    journey.Id, journey.Name, journey.Description, journey.Status, journey.Version, journey.CreatedAt, journey.UpdatedAt, changeEnd, seqEnd);
            }

            await ExecuteOnAsync(connection, """
                INSERT INTO journey_versions SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM journey_versions WHERE journey_id = $1 AND version = $2)
                """, cancellationToken, journey.Id, journey.Version, JourneyParser.ToJson(journey.Definition).ToJsonString(), journey.UpdatedAt);
            transaction.Commit();
        }
        catch (DuckDBException e)
        {
            throw DuckDbErrors.Translate(e, "save journey", options.Path);
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task<bool> DeleteJourneyAsync(string id, string reason, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            await WriteAheadCursorsAsync(cancellationToken);
            _noJourneys = null;
            using var connection = OpenReader();
            using var transaction = connection.BeginTransaction();
            if (await ExecuteOnAsync(connection, "UPDATE journeys SET status = 'deleted', updated_at = $2 WHERE id = $1 AND status <> 'deleted'", cancellationToken, id, now) == 0) { return false; }
            await ExecuteOnAsync(connection, $"""
                INSERT INTO journey_history
                SELECT (SELECT coalesce(max(id), 0) FROM journey_history) + row_number() OVER (ORDER BY id), id, journey_id, profile_id, run, step_id, 'exited', $2, $3
                FROM journey_positions WHERE journey_id = $1 AND state = 'active'
                """, cancellationToken, id, reason, now);
            await ExecuteOnAsync(connection, """
                UPDATE journey_positions SET state = 'exited', waiting = false, due_at = NULL, wait_event = NULL, reason = $2, ended_at = $3, updated_at = $3
                WHERE journey_id = $1 AND state = 'active'
                """, cancellationToken, id, reason, now);
            transaction.Commit();
            _lastHistoryId = -1;
            return true;
        }
        catch (DuckDBException e)
        {
            throw DuckDbErrors.Translate(e, "delete journey", options.Path);
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task<JourneyStepResult> DeriveJourneysAsync(IJourneyRunner runner, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            if (SkipQuietJourneysStep()) { return new JourneyStepResult(0, 0, false); }
            using var connection = OpenReader();
            await LoadJourneyIdsAsync(connection, cancellationToken);
            using var transaction = connection.BeginTransaction();
            var cursor = _journeysAt.From((await ReadOnAsync(connection, "SELECT change_id, seq FROM journey_cursor", r => new ActivationCursor(r.GetInt64(0), r.GetInt64(1)), cancellationToken))[0]);
            var lastChange = await ScalarOnAsync<long?>(connection, "SELECT max(id) FROM audience_changes WHERE id > $1", cancellationToken, cursor.ChangeId) ?? cursor.ChangeId;
            var changeUpTo = Math.Min(lastChange, cursor.ChangeId + JourneyRows.ChangeStep);
            var lastSeq = await ScalarOnAsync<long?>(connection, "SELECT max(seq) FROM events WHERE seq > $1", cancellationToken, cursor.Seq) ?? cursor.Seq;
            var seqUpTo = Math.Min(lastSeq, cursor.Seq + JourneyRows.EventStep);
            var more = lastChange > changeUpTo || lastSeq > seqUpTo;
            if (changeUpTo == cursor.ChangeId && seqUpTo == cursor.Seq) { return new JourneyStepResult(0, 0, false); }

            var journeys = (await ReadOnAsync(connection, $"{JourneyRows.SelectJourneys} AND j.status <> 'draft' ORDER BY j.created_at, j.id", JourneyRows.ReadJourney, cancellationToken));
            var moved = 0;
            var sent = 0;
            var read = false;
            if (journeys.Count > 0)
            {
                var versions = await ReadOnAsync(connection, "SELECT journey_id, version, definition FROM journey_versions", JourneyRows.ReadVersion, cancellationToken);
                var interest = runner.Interest(journeys, versions);
                List<StoredAudienceChange> changes = changeUpTo > cursor.ChangeId && interest.Segments.Count > 0
                    ? await ReadOnAsync(connection, $"SELECT {AudienceRows.ChangeColumns} FROM audience_changes WHERE id > $1 AND id <= $2 AND audience_id IN (SELECT unnest($3)) ORDER BY id",
                        AudienceRows.ReadChange, cancellationToken, cursor.ChangeId, changeUpTo, interest.Segments.ToList())
                    : [];
                List<StoredEvent> events = [];
                if (seqUpTo > cursor.Seq && interest.EventNames.Count > 0)
                {
                    var parameters = new List<object?> { cursor.Seq, seqUpTo };
                    var condition = JourneyRows.EventCondition(interest, value =>
                    {
                        parameters.Add(value);
                        return $"${parameters.Count}";
                    });
                    events = await ReadOnAsync(connection, $"SELECT {EventReader.Columns} FROM events WHERE seq > $1 AND seq <= $2 AND profile_id IS NOT NULL AND {condition} ORDER BY seq",
                        r => EventReader.Read(r, _raw), cancellationToken, [.. parameters]);
                }

                read = changes.Count > 0 || events.Count > 0;
                if (read)
                {
                    var profiles = runner.Cluster(JourneyRows.CauseProfiles(changes, events)).ToList();
                    var positions = await ReadOnAsync(connection, $"SELECT {JourneyRows.PositionColumns} FROM journey_positions WHERE state = 'active' AND profile_id IN (SELECT unnest($1)) ORDER BY id",
                        JourneyRows.ReadPosition, cancellationToken, profiles);
                    var lastRuns = (await ReadOnAsync(connection, JourneyRows.LastRuns("IN (SELECT unnest($1))"), r => ((r.GetString(0), r.GetString(1)), JourneyRows.ReadLastRun(r)), cancellationToken, profiles))
                        .ToDictionary(x => x.Item1, x => x.Item2);
                    var input = await JourneyInputAsync(connection, now, journeys, versions, changes, events, cursor.Seq, seqUpTo, positions, lastRuns, profiles, cancellationToken);
                    var outcome = runner.Derive(input);
                    (moved, sent) = await WriteJourneyOutcomeAsync(connection, outcome, cancellationToken);
                }
            }

            // A step that read no change and no event wrote nothing: its position stays in memory (DerivationPosition).
            if (read) { await ExecuteOnAsync(connection, "UPDATE journey_cursor SET change_id = $1, seq = $2", cancellationToken, changeUpTo, seqUpTo); }
            transaction.Commit();
            _journeysAt.Moved(new ActivationCursor(changeUpTo, seqUpTo), written: read);
            _noJourneys = journeys.Count == 0;
            return new JourneyStepResult(moved, sent, more);
        }
        catch (DuckDBException e)
        {
            // Nothing of this step was stored and the cursor did not move: the next step derives it again.
            (_lastDeliveryId, _lastPositionId, _lastHistoryId) = (-1, -1, -1);
            throw DuckDbErrors.Translate(e, "move journeys", options.Path);
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task<JourneyStepResult> AdvanceDueJourneysAsync(IJourneyRunner runner, DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        await _activationLock.WaitAsync(cancellationToken);
        try
        {
            using var connection = OpenReader();
            await LoadJourneyIdsAsync(connection, cancellationToken);
            using var transaction = connection.BeginTransaction();
            var due = await ReadOnAsync(connection, $"""
                SELECT {JourneyRows.PositionColumns} FROM journey_positions
                WHERE state = 'active' AND due_at <= $1 AND journey_id IN (SELECT id FROM journeys WHERE status = 'active')
                ORDER BY due_at, id LIMIT $2
                """, JourneyRows.ReadPosition, cancellationToken, now, limit);
            if (due.Count == 0) { return new JourneyStepResult(0, 0, false); }
            var journeys = await ReadOnAsync(connection, $"{JourneyRows.SelectJourneys} AND j.status = 'active'", JourneyRows.ReadJourney, cancellationToken);
            var versions = await ReadOnAsync(connection, "SELECT journey_id, version, definition FROM journey_versions", JourneyRows.ReadVersion, cancellationToken);
            var seqNow = await ScalarOnAsync<long?>(connection, "SELECT max(seq) FROM events", cancellationToken) ?? 0;
            var profiles = runner.Cluster(due.Select(p => p.ProfileId)).ToList();
            var input = await JourneyInputAsync(connection, now, journeys, versions, [], [], seqNow, seqNow, due, new Dictionary<(string, string), LastRun>(), profiles, cancellationToken);
            var (moved, sent) = await WriteJourneyOutcomeAsync(connection, runner.Advance(input), cancellationToken);
            transaction.Commit();
            return new JourneyStepResult(moved, sent, due.Count == limit);
        }
        catch (DuckDBException e)
        {
            (_lastDeliveryId, _lastPositionId, _lastHistoryId) = (-1, -1, -1);
            throw DuckDbErrors.Translate(e, "advance journeys", options.Path);
        }
        finally
        {
            _activationLock.Release();
        }
    }

    public async Task<DateTimeOffset?> NextJourneyDueAsync(CancellationToken cancellationToken) =>
        await ScalarAsync<DateTimeOffset?>("SELECT min(due_at) FROM journey_positions WHERE state = 'active' AND journey_id IN (SELECT id FROM journeys WHERE status = 'active')", cancellationToken);

    public async Task<IReadOnlyList<JourneyPosition>> QueryPositionsAsync(PositionQuery query, CancellationToken cancellationToken)
    {
        var parameters = new List<object?>();
        var where = JourneyRows.PositionFilter(query, value =>
        {
            parameters.Add(value);
            return $"${parameters.Count}";
        }, ids => $"IN (SELECT unnest({ids}))");
        parameters.Add(query.Limit);
        return await ReadAllAsync($"SELECT {JourneyRows.PositionColumns} FROM journey_positions WHERE {where} ORDER BY id DESC LIMIT ${parameters.Count}",
            JourneyRows.ReadPosition, cancellationToken, [.. parameters]);
    }

    public async Task<IReadOnlyList<PositionCount>> CountPositionsAsync(string journeyId, CancellationToken cancellationToken) =>
        await ReadAllAsync("SELECT state, step_id, count(*) FROM journey_positions WHERE journey_id = $1 GROUP BY state, step_id ORDER BY state, step_id",
            r => new PositionCount(r.GetString(0), r.GetString(1), r.GetInt64(2)), cancellationToken, journeyId);

    public async Task<IReadOnlyList<JourneyHistoryEntry>> JourneyHistoryAsync(IReadOnlyCollection<long> positionIds, CancellationToken cancellationToken) =>
        positionIds.Count == 0
            ? []
            : await ReadAllAsync($"SELECT {JourneyRows.HistoryColumns} FROM journey_history WHERE position_id IN (SELECT unnest($1)) ORDER BY id",
                JourneyRows.ReadHistory, cancellationToken, positionIds.ToList());

    /// <summary>The rest of a step's input: destinations, consent of the profiles involved, and frequency-cap counts.</summary>
    private async Task<JourneyInput> JourneyInputAsync(
        DuckDBConnection connection, DateTimeOffset now, IReadOnlyList<StoredJourney> journeys, IReadOnlyList<JourneyVersionText> versions, IReadOnlyList<StoredAudienceChange> changes,
        IReadOnlyList<StoredEvent> events, long seqBefore, long seqNow, IReadOnlyList<JourneyPosition> positions, IReadOnlyDictionary<(string, string), LastRun> lastRuns,
        List<string> profiles, CancellationToken cancellationToken)
    {
        var destinations = await ReadOnAsync(connection, $"SELECT {ActivationRows.DestinationColumns} FROM destinations", ActivationRows.ReadDestination, cancellationToken);
        var consent = await ReadConsentOnAsync(connection, profiles, cancellationToken);
        var recent = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        foreach (var (id, since) in ActivationRows.Capped(destinations, now))
        {
            recent[id] = (await ReadOnAsync(connection, ActivationRows.CapCounts("IN (SELECT unnest($3))"), r => (r.GetString(0), r.GetInt64(1)), cancellationToken, id, since, profiles))
                .ToDictionary(c => c.Item1, c => (int)c.Item2, StringComparer.Ordinal);
        }

        return new JourneyInput(now, journeys, versions, destinations, changes, events, seqBefore, seqNow, positions, lastRuns, consent, recent, () => ++_lastPositionId);
    }

    /// <summary>Writes a step's runs (replacing the moved ones), history lines and deliveries in the caller's transaction.</summary>
    private async Task<(int Moved, int Deliveries)> WriteJourneyOutcomeAsync(DuckDBConnection connection, JourneyOutcome outcome, CancellationToken cancellationToken)
    {
        if (outcome.Positions.Count > 0)
        {
            await ExecuteOnAsync(connection, "CREATE OR REPLACE TEMP TABLE journey_moves AS SELECT * FROM journey_positions LIMIT 0", cancellationToken);
            using (var appender = connection.CreateAppender("journey_moves"))
            {
                foreach (var p in outcome.Positions)
                {
                    appender.CreateRow().AppendValue(p.Id).AppendValue(p.JourneyId).AppendValue(p.ProfileId).AppendValue((int?)p.Run).AppendValue((int?)p.Version).AppendValue(p.StepId)
                        .AppendValue(p.State).AppendValue(p.Waiting).AppendValue(p.DueAt).AppendValue(p.WaitEvent).AppendValue(p.WaitAfterSeq).AppendValue(p.EnteredAt)
                        .AppendValue(p.StepEnteredAt).AppendValue(p.UpdatedAt).AppendValue(p.EndedAt).AppendValue(p.Reason).AppendValue(p.Context).EndRow();
                }

                appender.Close();
            }

            await ExecuteOnAsync(connection, "DELETE FROM journey_positions WHERE id IN (SELECT id FROM journey_moves)", cancellationToken);
            await ExecuteOnAsync(connection, "INSERT INTO journey_positions SELECT * FROM journey_moves", cancellationToken);
        }

        if (outcome.History.Count > 0)
        {
            using var appender = connection.CreateAppender("journey_history");
            foreach (var h in outcome.History)
            {
                appender.CreateRow().AppendValue(++_lastHistoryId).AppendValue(h.PositionId).AppendValue(h.JourneyId).AppendValue(h.ProfileId).AppendValue((int?)h.Run)
                    .AppendValue(h.StepId).AppendValue(h.Action).AppendValue(h.Detail).AppendValue(h.At).EndRow();
            }

            appender.Close();
        }

        if (outcome.Deliveries.Count > 0)
        {
            await LoadDeliveryIdsAsync(connection, cancellationToken);
            using var appender = connection.CreateAppender("deliveries");
            foreach (var d in outcome.Deliveries)
            {
                // Pending ones unclaimed and due now: the activation service's claim loop takes them like any due retry.
                var isPending = d.Status == DeliveryStatus.Pending;
                appender.CreateRow()
                    .AppendValue(++_lastDeliveryId).AppendValue(d.DestinationId).AppendValue(d.ProfileId).AppendValue(d.Kind).AppendValue(d.CauseId).AppendValue(d.IdempotencyKey)
                    .AppendValue(d.Payload).AppendValue(d.Status).AppendValue(d.Reason).AppendValue((int?)0).AppendValue(isPending ? d.CreatedAt : (DateTimeOffset?)null)
                    .AppendValue((string?)null).AppendValue((string?)null).AppendValue((DateTimeOffset?)null)
                    .AppendValue(d.CreatedAt).AppendValue(d.CreatedAt).AppendValue((DateTimeOffset?)null)
                    .EndRow();
            }

            appender.Close();
        }

        return (outcome.Positions.Count, outcome.Deliveries.Count);
    }

    private async Task LoadJourneyIdsAsync(DuckDBConnection connection, CancellationToken cancellationToken)
    {
        if (_lastPositionId < 0) { _lastPositionId = await ScalarOnAsync<long?>(connection, "SELECT max(id) FROM journey_positions", cancellationToken) ?? 0; }
        if (_lastHistoryId < 0) { _lastHistoryId = await ScalarOnAsync<long?>(connection, "SELECT max(id) FROM journey_history", cancellationToken) ?? 0; }
    }

    private static async Task<int> ExecuteOnAsync(DuckDBConnection connection, string sql, CancellationToken cancellationToken, params object?[] parameters)
    {
        using var command = Command(connection, sql, parameters);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
