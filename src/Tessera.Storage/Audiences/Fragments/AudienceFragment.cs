using Tessera.Core.Audiences;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// One node of a definition as SQL: a condition on the live profile <see cref="AudienceSqlBuilder.Profile"/> that is
/// TRUE or FALSE, never NULL, so that and/or/not compose as in memory. One small class per condition kind.
/// </summary>
internal abstract class AudienceFragment
{
    public abstract string Sql(AudienceSqlBuilder b);

    public static AudienceFragment For(AudienceCondition condition) => condition switch
    {
        AllOf all => new AllOfFragment(all),
        AnyOf any => new AnyOfFragment(any),
        NotCondition not => new NotFragment(not),
        TraitCondition trait => new TraitFragment(trait),
        IdentifierCondition identifier => new IdentifierFragment(identifier),
        ComputedCondition computed => new ComputedFragment(computed),
        EventCondition e => new EventFragment(e),
        SequenceCondition sequence => new SequenceFragment(sequence),
        SegmentReference segment => new SegmentFragment(segment),
        _ => throw new ArgumentOutOfRangeException(nameof(condition), condition.GetType().Name, "no SQL for this condition"),
    };

    /// <summary>
    /// Membership of a set of profiles given by <paramref name="profiles"/> (a query of one column of live profile
    /// ids, none NULL): the profile is in it, or (<paramref name="negate"/>) it is not. IN keeps it a hashed
    /// (anti-)semi-join under OR and NOT on both stores.
    /// </summary>
    protected static string In(string profiles, bool negate = false) =>
        negate ? $"NOT ({AudienceSqlBuilder.Profile} IN ({profiles}))" : $"({AudienceSqlBuilder.Profile} IN ({profiles}))";
}
