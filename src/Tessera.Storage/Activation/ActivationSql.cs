namespace Tessera.Storage.Activation;

/// <summary>Statements both stores run with the same text (both take <c>$1, $2, ...</c>).</summary>
internal static class ActivationSql
{
    /// <summary>Applies the outcomes (<paramref name="outcomes"/>: a FROM item named <c>u</c>) to the rows still claimed by <c>$1</c>.</summary>
    public static string RecordOutcomes(string outcomes) => $"""
        UPDATE deliveries SET
            status = u.status,
            attempts = deliveries.attempts + CASE WHEN u.attempted THEN 1 ELSE 0 END,
            last_error = coalesce(u.error, deliveries.last_error),
            reason = CASE WHEN u.status IN ('dead', 'cancelled') THEN u.error ELSE deliveries.reason END,
            next_attempt_at = u.next_at,
            delivered_at = CASE WHEN u.status = 'delivered' THEN u.done_at ELSE deliveries.delivered_at END,
            updated_at = u.done_at,
            payload = coalesce(u.payload, deliveries.payload),
            claimed_by = NULL,
            claimed_until = NULL
        FROM {outcomes}
        WHERE deliveries.id = u.id AND deliveries.idempotency_key = u.idempotency_key AND deliveries.claimed_by = $1
        """;

    /// <summary>Dead letters of destination <c>$1</c> back to pending, due at <c>$2</c>; the caller appends an id filter and RETURNING.</summary>
    public const string Replay = """
        UPDATE deliveries SET status = 'pending', attempts = 0, reason = NULL, next_attempt_at = $2, updated_at = $2, claimed_by = NULL, claimed_until = NULL
        WHERE destination_id = $1 AND status = 'dead'
        """;

    /// <summary>The WHERE clause of a delivery query; <paramref name="inList"/> writes "IN (the list parameter)" in the store's dialect.</summary>
    public static string DeliveryFilter(DeliveryQuery query, Func<object, string> bind, Func<string, string> inList)
    {
        var clauses = new List<string> { "true" };
        if (query.DestinationId is { } destination) { clauses.Add($"destination_id = {bind(destination)}"); }
        if (query.ProfileIds is { } profiles) { clauses.Add($"profile_id {inList(bind(profiles.ToList()))}"); }
        if (query.Status is { } status) { clauses.Add($"status = {bind(status)}"); }
        if (query.Before is { } before) { clauses.Add($"id < {bind(before)}"); }
        return string.Join(" AND ", clauses);
    }

    /// <summary>A file destination's (<c>$1</c>) latest run time and whether a run is pending; <c>$2</c> is the run kind.</summary>
    public const string RunState = "SELECT max(cause_id), bool_or(status = 'pending') FROM deliveries WHERE destination_id = $1 AND kind = $2";
}
