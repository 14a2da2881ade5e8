using Npgsql;
using Tessera.Core.Journeys;
using Tessera.Storage.Activation;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;
using Tessera.Storage.Journeys;

namespace Tessera.Storage.Postgres;

/// <summary>
/// Journeys on PostgreSQL, shared by every process on the database. Derivation takes <c>journey_cursor</c> with
/// <c>FOR UPDATE SKIP LOCKED</c> (one process at a time) and locks the runs it reads; advancing takes due runs with
/// <c>FOR UPDATE SKIP LOCKED</c>, so two processes never move one run; a partial unique index keeps a profile in a
/// journey at most once at a time whatever happens; journey sends are unique by idempotency key like every delivery.
/// </summary>
public sealed partial class PostgresStore : IJourneyStore
{
    private readonly ChangeGap _journeyChangeGap = new();

    public async Task<IReadOnlyList<StoredJourney>> ListJourneysAsync(CancellationToken cancellationToken) =>
        await RunAsync("list journeys", connection => ReadAllAsync(connection, $"{JourneyRows.SelectJourneys} ORDER BY j.created_at, j.id", JourneyRows.ReadJourney, cancellationToken), cancellationToken);

    public async Task<StoredJourney?> GetJourneyAsync(string id, CancellationToken cancellationToken) =>
        (await RunAsync("read journey", connection => ReadAllAsync(connection, $"{JourneyRows.SelectJourneys} AND j.id = $1", JourneyRows.ReadJourney, cancellationToken, id), cancellationToken)).FirstOrDefault();

    public async Task SaveJourneyAsync(Journey journey, bool startEntries, CancellationToken cancellationToken) =>
        await RunAsync("save journey", async connection =>
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await ExecuteAsync(connection, """
                INSERT INTO journeys (id, name, description, status, version, created_at, updated_at, after_change_id, after_seq)
                VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT coalesce(max(id), 0) FROM audience_changes), (SELECT coalesce(max(seq), 0) FROM events))
                ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, status = EXCLUDED.status, version = EXCLUDED.version,
                    updated_at = EXCLUDED.updated_at,
                    after_change_id = CASE WHEN $8 THEN EXCLUDED.after_change_id ELSE journeys.after_change_id END,
                    after_seq = CASE WHEN $8 THEN EXCLUDED.after_seq ELSE journeys.after_seq END
                """, cancellationToken, journey.Id, journey.Name, journey.Description, journey.Status, journey.Version, journey.CreatedAt.ToUniversalTime(),
                journey.UpdatedAt.ToUniversalTime(), startEntries);
            await ExecuteAsync(connection, "INSERT INTO journey_versions VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", cancellationToken,
                journey.Id, journey.Version, JourneyParser.ToJson(journey.Definition).ToJsonString(), journey.UpdatedAt.ToUniversalTime());
            await transaction.CommitAsync(cancellationToken);
            return true;
        }, cancellationToken);

    public async Task<bool> DeleteJourneyAsync(string id, string reason, DateTimeOffset now, CancellationToken cancellationToken) =>
        await RunAsync("delete journey", async connection =>
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            if (await ExecuteAsync(connection, "UPDATE journeys SET status = 'deleted', updated_at = $2 WHERE id = $1 AND status <> 'deleted'", cancellationToken, id, now.ToUniversalTime()) == 0)
            {
                return false;
            }

            await ExecuteAsync(connection, """
                WITH ended AS (
                    UPDATE journey_positions SET state = 'exited', waiting = false, due_at = NULL, wait_event = NULL, reason = $2, ended_at = $3, updated_at = $3
                    WHERE journey_id = $1 AND state = 'active'
                    RETURNING id, journey_id, profile_id, run, step_id)
                INSERT INTO journey_history (position_id, journey_id, profile_id, run, step_id, action, detail, occurred_at)
                SELECT id, journey_id, profile_id, run, step_id, 'exited', $2, $3 FROM ended ORDER BY id
                """, cancellationToken, id, reason, now.ToUniversalTime());
            await transaction.CommitAsync(cancellationToken);
            return true;
        }, cancellationToken);

    public async Task<JourneyStepResult> DeriveJourneysAsync(IJourneyRunner runner, DateTimeOffset now, CancellationToken cancellationToken) =>
        await RunAsync("move journeys", async connection =>
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            var cursors = await ReadAllAsync(connection, "SELECT change_id, seq FROM journey_cursor FOR UPDATE SKIP LOCKED", r => new ActivationCursor(r.GetInt64(0), r.GetInt64(1)), cancellationToken);
            if (cursors.Count == 0) { return new JourneyStepResult(0, 0, More: false, Busy: true); }
            var cursor = cursors[0];
            // A hole in the change ids is a matter of transactions in flight: it is timed with the real clock.
            var (changes, changeUpTo, moreChanges) = await ReadChangesAsync(connection, cursor.ChangeId, DateTimeOffset.UtcNow, _journeyChangeGap, cancellationToken);
            var lastSeq = Math.Max(await ScalarAsync<long?>(connection, "SELECT max(seq) FROM events", cancellationToken) ?? 0, cursor.Seq);
            var seqUpTo = Math.Min(lastSeq, cursor.Seq + JourneyRows.EventStep);
            if (changeUpTo == cursor.ChangeId && seqUpTo == cursor.Seq) { return new JourneyStepResult(0, 0, moreChanges); }

            var journeys = await ReadAllAsync(connection, $"{JourneyRows.SelectJourneys} AND j.status <> 'draft' ORDER BY j.created_at, j.id", JourneyRows.ReadJourney, cancellationToken);
            var moved = 0;
            var sent = 0;
            if (journeys.Count > 0)
            {
                var versions = await ReadAllAsync(connection, "SELECT journey_id, version, definition FROM journey_versions", JourneyRows.ReadVersion, cancellationToken);
                var interest = runner.Interest(journeys, versions);
                var segments = interest.Segments.ToHashSet(StringComparer.Ordinal);
                changes = [.. changes.Where(c => segments.Contains(c.Change.AudienceId))];
                List<StoredEvent> events = [];
                if (seqUpTo > cursor.Seq && interest.EventNames.Count > 0)
                {
                    var parameters = new List<object?> { cursor.Seq, seqUpTo };
                    var condition = JourneyRows.EventCondition(interest, value =>
                    {
                        parameters.Add(value);
                        return $"${parameters.Count}";
                    });
                    events = await ReadAllAsync(connection, $"SELECT {EventReader.Columns} FROM events WHERE seq > $1 AND seq <= $2 AND profile_id IS NOT NULL AND {condition} ORDER BY seq",
                        r => EventReader.Read(r), cancellationToken, [.. parameters]);
                }

                if (changes.Count > 0 || events.Count > 0)
                {
                    var profiles = runner.Cluster(JourneyRows.CauseProfiles(changes, events)).ToArray();
                    // Locked: a run the scheduler is moving right now is read once it committed.
                    var positions = await ReadAllAsync(connection, $"SELECT {JourneyRows.PositionColumns} FROM journey_positions WHERE state = 'active' AND profile_id = ANY($1) ORDER BY id FOR UPDATE",
                        JourneyRows.ReadPosition, cancellationToken, (object)profiles);
                    var lastRuns = (await ReadAllAsync(connection, JourneyRows.LastRuns("= ANY($1)"), r => ((r.GetString(0), r.GetString(1)), JourneyRows.ReadLastRun(r)), cancellationToken, (object)profiles))
                        .ToDictionary(x => x.Item1, x => x.Item2);
                    var input = await JourneyInputAsync(connection, now, journeys, versions, changes, events, cursor.Seq, seqUpTo, positions, lastRuns, profiles, cancellationToken);
                    (moved, sent) = await WriteJourneyOutcomeAsync(connection, runner.Derive(input), cancellationToken);
                }
            }

            await ExecuteAsync(connection, "UPDATE journey_cursor SET change_id = $1, seq = $2", cancellationToken, changeUpTo, seqUpTo);
            await transaction.CommitAsync(cancellationToken);
            return new JourneyStepResult(moved, sent, moreChanges || lastSeq > seqUpTo);
        }, cancellationToken);

    public async Task<JourneyStepResult> AdvanceDueJourneysAsync(IJourneyRunner runner, DateTimeOffset now, int limit, CancellationToken cancellationToken) =>
        await RunAsync("advance journeys", async connection =>
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            var journeys = await ReadAllAsync(connection, $"{JourneyRows.SelectJourneys} AND j.status = 'active'", JourneyRows.ReadJourney, cancellationToken);
            if (journeys.Count == 0) { return new JourneyStepResult(0, 0, false); }
            var due = await ReadAllAsync(connection, $"""
                SELECT {JourneyRows.PositionColumns} FROM journey_positions
                WHERE state = 'active' AND due_at <= $1 AND journey_id = ANY($2)
                ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
                """, JourneyRows.ReadPosition, cancellationToken, now.UtcDateTime, journeys.Select(j => j.Journey.Id).ToArray(), limit);
            if (due.Count == 0) { return new JourneyStepResult(0, 0, false); }
            var versions = await ReadAllAsync(connection, "SELECT journey_id, version, definition FROM journey_versions", JourneyRows.ReadVersion, cancellationToken);
            var seqNow = await ScalarAsync<long?>(connection, "SELECT max(seq) FROM events", cancellationToken) ?? 0;
            var profiles = runner.Cluster(due.Select(p => p.ProfileId)).ToArray();
            var input = await JourneyInputAsync(connection, now, journeys, versions, [], [], seqNow, seqNow, due, new Dictionary<(string, string), LastRun>(), profiles, cancellationToken);
            var (moved, sent) = await WriteJourneyOutcomeAsync(connection, runner.Advance(input), cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return new JourneyStepResult(moved, sent, due.Count == limit);
        }, cancellationToken);

    public async Task<DateTimeOffset?> NextJourneyDueAsync(CancellationToken cancellationToken) =>
        await RunAsync("next due journey step", async connection =>
        {
            var value = await Command(connection, "SELECT min(due_at) FROM journey_positions WHERE state = 'active' AND journey_id IN (SELECT id FROM journeys WHERE status = 'active')", [])
                .ExecuteScalarAsync(cancellationToken);
            return value is DateTime time ? new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc)) : (DateTimeOffset?)null;
        }, cancellationToken);

    public async Task<IReadOnlyList<JourneyPosition>> QueryPositionsAsync(PositionQuery query, CancellationToken cancellationToken) =>
        await RunAsync("read journey positions", connection =>
        {
            var parameters = new List<object?>();
            var where = JourneyRows.PositionFilter(query, value =>
            {
                parameters.Add(value is List<string> list ? list.ToArray() : value);
                return $"${parameters.Count}";
            }, ids => $"= ANY({ids})");
            parameters.Add(query.Limit);
            return ReadAllAsync(connection, $"SELECT {JourneyRows.PositionColumns} FROM journey_positions WHERE {where} ORDER BY id DESC LIMIT ${parameters.Count}",
                JourneyRows.ReadPosition, cancellationToken, [.. parameters]);
        }, cancellationToken);

    public async Task<IReadOnlyList<PositionCount>> CountPositionsAsync(string journeyId, CancellationToken cancellationToken) =>
        await RunAsync("count journey positions", connection => ReadAllAsync(connection,
            "SELECT state, step_id, count(*) FROM journey_positions WHERE journey_id = $1 GROUP BY state, step_id ORDER BY state, step_id",
            r => new PositionCount(r.GetString(0), r.GetString(1), r.GetInt64(2)), cancellationToken, journeyId), cancellationToken);

    public async Task<IReadOnlyList<JourneyHistoryEntry>> JourneyHistoryAsync(IReadOnlyCollection<long> positionIds, CancellationToken cancellationToken) =>
        positionIds.Count == 0
            ? []
            : await RunAsync("read journey history", connection => ReadAllAsync(connection,
                $"SELECT {JourneyRows.HistoryColumns} FROM journey_history WHERE position_id = ANY($1) ORDER BY id", JourneyRows.ReadHistory, cancellationToken, (object)positionIds.ToArray()), cancellationToken);

    private async Task<JourneyInput> JourneyInputAsync(
        NpgsqlConnection connection, DateTimeOffset now, IReadOnlyList<StoredJourney> journeys, IReadOnlyList<JourneyVersionText> versions, IReadOnlyList<StoredAudienceChange> changes,
        IReadOnlyList<StoredEvent> events, long seqBefore, long seqNow, IReadOnlyList<Core.Journeys.JourneyPosition> positions, IReadOnlyDictionary<(string, string), LastRun> lastRuns,
        string[] profiles, CancellationToken cancellationToken)
    {
        var destinations = await ReadAllAsync(connection, $"SELECT {ActivationRows.DestinationColumns} FROM destinations", ActivationRows.ReadDestination, cancellationToken);
        var consent = await ReadConsentAsync(connection, profiles, cancellationToken);
        var recent = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        foreach (var (id, since) in ActivationRows.Capped(destinations, now))
        {
            recent[id] = (await ReadAllAsync(connection, ActivationRows.CapCounts("= ANY($3)"), r => (r.GetString(0), r.GetInt64(1)), cancellationToken, id, since.UtcDateTime, profiles))
                .ToDictionary(c => c.Item1, c => (int)c.Item2, StringComparer.Ordinal);
        }

        // Run ids come from a sequence, a block at a time (the runner asks for them synchronously).
        var block = new Queue<long>();
        long NextId()
        {
            if (block.Count == 0)
            {
                using var command = Command(connection, "SELECT nextval('journey_position_ids') FROM generate_series(1, 1000)", []);
                using var reader = command.ExecuteReader();
                while (reader.Read()) { block.Enqueue(reader.GetInt64(0)); }
            }

            return block.Dequeue();
        }

        return new JourneyInput(now, journeys, versions, destinations, changes, events, seqBefore, seqNow, positions, lastRuns, consent, recent, NextId);
    }

    private static async Task<(int Moved, int Deliveries)> WriteJourneyOutcomeAsync(NpgsqlConnection connection, JourneyOutcome outcome, CancellationToken cancellationToken)
    {
        var p = outcome.Positions;
        if (p.Count > 0)
        {
            await ExecuteAsync(connection, $"""
                INSERT INTO journey_positions ({JourneyRows.PositionColumns})
                SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::int[], $6::text[], $7::text[], $8::boolean[], $9::timestamptz[], $10::text[],
                    $11::bigint[], $12::timestamptz[], $13::timestamptz[], $14::timestamptz[], $15::timestamptz[], $16::text[], $17::text[])
                ON CONFLICT (id) DO UPDATE SET step_id = EXCLUDED.step_id, state = EXCLUDED.state, waiting = EXCLUDED.waiting, due_at = EXCLUDED.due_at,
                    wait_event = EXCLUDED.wait_event, wait_after_seq = EXCLUDED.wait_after_seq, step_entered_at = EXCLUDED.step_entered_at, updated_at = EXCLUDED.updated_at,
                    ended_at = EXCLUDED.ended_at, reason = EXCLUDED.reason
                """, cancellationToken, p.Select(x => x.Id).ToArray(), p.Select(x => x.JourneyId).ToArray(), p.Select(x => x.ProfileId).ToArray(), p.Select(x => x.Run).ToArray(),
                p.Select(x => x.Version).ToArray(), p.Select(x => x.StepId).ToArray(), p.Select(x => x.State).ToArray(), p.Select(x => x.Waiting).ToArray(),
                p.Select(x => x.DueAt?.UtcDateTime).ToArray(), p.Select(x => x.WaitEvent).ToArray(), p.Select(x => x.WaitAfterSeq).ToArray(), p.Select(x => x.EnteredAt.UtcDateTime).ToArray(),
                p.Select(x => x.StepEnteredAt.UtcDateTime).ToArray(), p.Select(x => x.UpdatedAt.UtcDateTime).ToArray(), p.Select(x => x.EndedAt?.UtcDateTime).ToArray(),
                p.Select(x => x.Reason).ToArray(), p.Select(x => x.Context).ToArray());
        }

        var h = outcome.History;
        if (h.Count > 0)
        {
            await ExecuteAsync(connection, $"""
                INSERT INTO journey_history ({JourneyRows.HistoryColumns})
                SELECT a, b, c, d, e, f, g, t
                FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::timestamptz[]) WITH ORDINALITY AS u(a, b, c, d, e, f, g, t, n)
                ORDER BY n
                """, cancellationToken,
                h.Select(x => x.PositionId).ToArray(), h.Select(x => x.JourneyId).ToArray(), h.Select(x => x.ProfileId).ToArray(), h.Select(x => x.Run).ToArray(),
                h.Select(x => x.StepId).ToArray(), h.Select(x => x.Action).ToArray(), h.Select(x => x.Detail).ToArray(), h.Select(x => x.At.UtcDateTime).ToArray());
        }

        var d = outcome.Deliveries;
        if (d.Count > 0)
        {
            // Pending ones unclaimed and due now: the activation service's claim loop takes them like any due retry.
            // A key already there was written by an earlier attempt at this step, and stays as it is.
            await ExecuteAsync(connection, """
                INSERT INTO deliveries (destination_id, profile_id, kind, cause_id, idempotency_key, payload, status, reason, attempts, next_attempt_at, created_at, updated_at)
                SELECT d, p, k, c, i, pl, s, r, 0, CASE WHEN s = 'pending' THEN t END, t, t
                FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[]) AS u(d, p, k, c, i, pl, s, r, t)
                ON CONFLICT (idempotency_key) DO NOTHING
                """, cancellationToken, d.Select(x => x.DestinationId).ToArray(), d.Select(x => x.ProfileId).ToArray(), d.Select(x => x.Kind).ToArray(), d.Select(x => x.CauseId).ToArray(),
                d.Select(x => x.IdempotencyKey).ToArray(), d.Select(x => x.Payload).ToArray(), d.Select(x => x.Status).ToArray(), d.Select(x => x.Reason).ToArray(),
                d.Select(x => x.CreatedAt.UtcDateTime).ToArray());
        }

        return (p.Count, d.Count);
    }
}
