using Tessera.Core.Audiences;
using Tessera.Core.Conditions;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// <c>{"trait": name, ...}</c> over the current traits' typed columns (<c>AudienceDialect.CurrentTraits</c>). A profile without the trait (or with it
/// null) holds exactly when the op holds for an absent value (<c>neq</c>, <c>not_in</c>, <c>not_exists</c>): then the
/// fragment is "not among the profiles that have it and fail", else "among the profiles that have it and pass".
/// </summary>
internal sealed class TraitFragment(TraitCondition condition) : AudienceFragment
{
    /// <summary>
    /// The profiles that have the trait and pass (a query of one column), when only those can hold it; null when a profile
    /// without the trait holds it too.
    /// </summary>
    public static string? Holders(AudienceSqlBuilder b, TraitCondition condition)
    {
        if (PropertyFilter.Test(condition.Op, false, default, condition.Value)) { return null; }
        var holds = ValueTest.Sql(b, condition.Op, new SqlValue("t.kind", "t.text", "t.num", "t.instant", "t.value"), condition.Value);
        return $"SELECT t.profile_id FROM {b.Dialect.CurrentTraits(b.Dialect.Text(b.Bind(condition.Trait)))} WHERE {holds}";
    }

    public override string Sql(AudienceSqlBuilder b)
    {
        if (ReferenceEquals(b.ScopeCondition, condition)) { return In($"SELECT {b.Scope}.pid FROM {b.Scope}"); }
        var value = new SqlValue("t.kind", "t.text", "t.num", "t.instant", "t.value");
        var holds = ValueTest.Sql(b, condition.Op, value, condition.Value);
        var name = b.Dialect.Text(b.Bind(condition.Trait));
        return PropertyFilter.Test(condition.Op, false, default, condition.Value)
            ? In($"SELECT t.profile_id FROM {b.Dialect.CurrentTraits(name)} WHERE NOT {holds}", negate: true)
            : In($"SELECT t.profile_id FROM {b.Dialect.CurrentTraits(name)} WHERE {holds}");
    }
}
