using System.Data.Common;
using Tessera.Core.Journeys;
using Tessera.Storage.Audiences;

namespace Tessera.Storage.Journeys;

/// <summary>The journey tables' columns, rows and statements, for both stores (both take <c>$1, $2, ...</c>).</summary>
internal static class JourneyRows
{
    public const string JourneyColumns = "j.id, j.name, j.description, j.status, j.version, v.definition, j.created_at, j.updated_at, j.after_change_id, j.after_seq";

    /// <summary>Journeys with their current definition; the caller adds conditions after <c>WHERE</c>.</summary>
    public const string SelectJourneys = $"SELECT {JourneyColumns} FROM journeys j JOIN journey_versions v ON v.journey_id = j.id AND v.version = j.version WHERE j.status <> 'deleted'";

    public const string PositionColumns =
        "id, journey_id, profile_id, run, version, step_id, state, waiting, due_at, wait_event, wait_after_seq, entered_at, step_entered_at, updated_at, ended_at, reason, context";

    public const string HistoryColumns = "position_id, journey_id, profile_id, run, step_id, action, detail, occurred_at";

    /// <summary>Most audience changes, and the widest span of event seqs, one derivation step reads.</summary>
    public const int ChangeStep = 10_000;

    public const int EventStep = 20_000;

    /// <summary>Each (journey, profile)'s latest run, for the profiles in list parameter <c>$1</c> (<paramref name="inList"/> writes the store's "IN list").</summary>
    public static string LastRuns(string inList) => $"""
        SELECT journey_id, profile_id, max(run), max(entered_at), bool_or(state = 'active') FROM journey_positions
        WHERE profile_id {inList} GROUP BY journey_id, profile_id
        """;

    public static StoredJourney ReadJourney(DbDataReader r) => new(
        new Journey(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetString(3), r.GetInt32(4),
            JourneyParser.ParseStored(r.GetString(5), $"journey {r.GetString(0)}"), AudienceRows.Time(r, 6), AudienceRows.Time(r, 7)),
        r.GetInt64(8), r.GetInt64(9));

    public static JourneyPosition ReadPosition(DbDataReader r) => new(
        r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetInt32(3), r.GetInt32(4), r.GetString(5), r.GetString(6), r.GetBoolean(7),
        r.IsDBNull(8) ? null : AudienceRows.Time(r, 8), r.IsDBNull(9) ? null : r.GetString(9), r.GetInt64(10), AudienceRows.Time(r, 11), AudienceRows.Time(r, 12),
        AudienceRows.Time(r, 13), r.IsDBNull(14) ? null : AudienceRows.Time(r, 14), r.IsDBNull(15) ? null : r.GetString(15), r.GetString(16));

    public static JourneyHistoryEntry ReadHistory(DbDataReader r) => new(
        r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetInt32(3), r.GetString(4), r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), AudienceRows.Time(r, 7));

    public static JourneyVersionText ReadVersion(DbDataReader r) => new(r.GetString(0), r.GetInt32(1), r.GetString(2));

    public static LastRun ReadLastRun(DbDataReader r) => new(r.GetInt32(2), AudienceRows.Time(r, 3), r.GetBoolean(4));

    /// <summary>The WHERE clause of a position query.</summary>
    public static string PositionFilter(PositionQuery query, Func<object, string> bind, Func<string, string> inList)
    {
        var clauses = new List<string> { "true" };
        if (query.JourneyId is { } journey) { clauses.Add($"journey_id = {bind(journey)}"); }
        if (query.ProfileIds is { } profiles) { clauses.Add($"profile_id {inList(bind(profiles.ToList()))}"); }
        if (query.StepId is { } step) { clauses.Add($"step_id = {bind(step)}"); }
        if (query.State is { } state) { clauses.Add($"state = {bind(state)}"); }
        if (query.Before is { } before) { clauses.Add($"id < {bind(before)}"); }
        return string.Join(" AND ", clauses);
    }

    /// <summary>The SQL condition on events a derivation reads, besides the seq range.</summary>
    public static string EventCondition(JourneyInterest interest, Func<object, string> bind) =>
        interest.EventNames.Count == 0 ? "false" : $"type = 'track' AND event IN ({string.Join(", ", interest.EventNames.Select(n => bind(n)))})";

    /// <summary>Every profile a step's causes name.</summary>
    public static IEnumerable<string> CauseProfiles(IReadOnlyList<StoredAudienceChange> changes, IReadOnlyList<Events.StoredEvent> events) =>
        changes.Select(c => c.Change.ProfileId).Concat(events.Select(e => e.ProfileId!)).Distinct(StringComparer.Ordinal);
}
