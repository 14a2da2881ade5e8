using System.Data.Common;
using Tessera.Core.Audiences;

namespace Tessera.Storage.Audiences;

/// <summary>The audience tables' columns and rows, shared by both stores.</summary>
internal static class AudienceRows
{
    public const string AudienceColumns = "id, name, description, definition, created_at, updated_at";

    public const string ChangeColumns = "id, audience_id, profile_id, entered, occurred_at, seq, reason";

    /// <summary>Each (audience, profile) whose last change was an entry: the stored memberships.</summary>
    public const string CurrentMembers = """
        SELECT audience_id, profile_id FROM (
            SELECT audience_id, profile_id, entered, row_number() OVER (PARTITION BY audience_id, profile_id ORDER BY id DESC) AS newest
            FROM audience_changes) AS c
        WHERE newest = 1 AND entered
        """;

    public static Audience ReadAudience(DbDataReader r)
    {
        var definition = AudienceDefinition.Parse(r.GetString(3), out var errors)
            ?? throw new InvalidDataException($"stored definition of audience {r.GetString(0)} no longer parses: {string.Join("; ", errors)}");
        return new Audience(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), definition, Time(r, 4), Time(r, 5));
    }

    public static StoredAudienceChange ReadChange(DbDataReader r) => new(
        r.GetInt64(0),
        new AudienceChange(r.GetString(1), r.GetString(2), r.GetBoolean(3), Time(r, 4), r.IsDBNull(5) ? null : r.GetInt64(5), r.GetString(6)));

    public static string DefinitionJson(Audience audience) => AudienceDefinition.ToJson(audience.Definition).ToJsonString();

    /// <summary>The WHERE clause of a change query, with its parameters added through <paramref name="bind"/>.</summary>
    public static string ChangeFilter(AudienceChangeQuery query, Func<object, string> bind)
    {
        var clauses = new List<string> { $"id > {bind(query.AfterId)}" };
        if (query.AudienceId is { } audience) { clauses.Add($"audience_id = {bind(audience)}"); }
        if (query.ProfileIds is { Count: > 0 } profiles) { clauses.Add($"profile_id IN ({string.Join(", ", profiles.Select(p => bind(p)))})"); }
        return string.Join(" AND ", clauses);
    }

    public static DateTimeOffset Time(DbDataReader r, int i) => r.GetFieldValue<DateTimeOffset>(i).ToUniversalTime();

    public const string SizeSql = """
        SELECT date_trunc($2, occurred_at) AS bucket, count(*) FILTER (WHERE entered), count(*) FILTER (WHERE NOT entered)
        FROM audience_changes WHERE audience_id = $1 GROUP BY bucket ORDER BY bucket
        """;

    public static AudienceSizeBucket ReadSize(DbDataReader r) => new(Time(r, 0), r.GetInt64(1), r.GetInt64(2));

    /// <summary>The track events an audience reads (its own and those of the audiences it refers to): what to backfill.</summary>
    public static string[] EventNames(Audience audience, Core.Profiles.ProfileEngine engine) =>
        [.. AudienceDependencies.Of(audience.Definition, id => engine.GetAudience(id)?.Definition, _ => null).Events];

    public static IEnumerable<AudienceChange> All(IEnumerable<Core.Profiles.ProcessedEvent> processed) =>
        processed.SelectMany(p => p.Audiences ?? []);
}
