using Tessera.Core.Audiences;
using Tessera.Core.Profiles;
using Tessera.Storage.Audiences.Dialects;
using Tessera.Storage.Audiences.Fragments;

namespace Tessera.Storage.Audiences;

/// <summary>
/// Compiles a definition into the store's statements. The universe is the live profiles: the rows of
/// <c>profile_ids</c> that map to themselves. Members come in ordinal order of their id.
/// </summary>
internal static class AudienceQuery
{
    // mergedIds: whether profile_ids may map an id to another profile; false only when the store knows none was ever
    // merged away (the SQL then takes stored profile ids as live ones).

    /// <summary>Every member's id.</summary>
    public static AudienceSql Members(
        AudienceDialect dialect, AudienceCondition definition, IReadOnlyList<ComputedTraitDefinition> computed, Func<string, AudienceCondition?> segments, DateTimeOffset now, bool mergedIds = true)
    {
        var b = Builder(dialect, definition, computed, segments, now, mergedIds);
        var condition = AudienceFragment.For(definition).Sql(b);
        var with = b.With();
        return new AudienceSql(
            $"{with}SELECT p.id FROM profile_ids p WHERE p.profile_id = p.id AND {condition}\nORDER BY {dialect.Ordinal("p.id")}",
            b.Parameters);
    }

    /// <summary>The first <paramref name="sampleSize"/> members' ids, each row carrying the total count (no row: no member).</summary>
    public static AudienceSql Preview(
        AudienceDialect dialect, AudienceCondition definition, IReadOnlyList<ComputedTraitDefinition> computed, Func<string, AudienceCondition?> segments, DateTimeOffset now, int sampleSize, bool mergedIds = true)
    {
        var b = Builder(dialect, definition, computed, segments, now, mergedIds);
        var condition = AudienceFragment.For(definition).Sql(b);
        // An int the caller gives, written as a number (DuckDB does not bind LIMIT); never text from a definition.
        var limit = Math.Max(1, sampleSize).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var with = b.With();
        return new AudienceSql(
            $"{with}SELECT p.id, count(*) OVER () AS total FROM profile_ids p WHERE p.profile_id = p.id AND {condition}\nORDER BY {dialect.Ordinal("p.id")} LIMIT {limit}",
            b.Parameters);
    }

    /// <summary>
    /// A builder for the definition. When the definition is an "and" with a trait condition that only profiles having
    /// the trait can pass, and a part that reads events, that trait's holders become the scope: the event reads keep only
    /// their rows (every member is among them, whatever the rest computes for other profiles), so a selective trait cuts
    /// the grouping work of every event condition.
    /// </summary>
    private static AudienceSqlBuilder Builder(
        AudienceDialect dialect, AudienceCondition definition, IReadOnlyList<ComputedTraitDefinition> computed, Func<string, AudienceCondition?> segments, DateTimeOffset now, bool mergedIds)
    {
        var b = new AudienceSqlBuilder(dialect, now, computed, segments, mergedIds);
        if (definition is AllOf { Conditions.Count: > 1 } all && all.Conditions.Any(c => c is not (TraitCondition or IdentifierCondition)))
        {
            foreach (var trait in all.Conditions.OfType<TraitCondition>())
            {
                if (TraitFragment.Holders(b, trait) is { } holders)
                {
                    b.SetScope(trait, holders);
                    break;
                }
            }
        }

        return b;
    }
}
