using Tessera.Core.Audiences;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary><c>{"or": [...]}</c>: some part holds (FALSE for none, as <c>Any</c> gives).</summary>
internal sealed class AnyOfFragment(AnyOf condition) : AudienceFragment
{
    public override string Sql(AudienceSqlBuilder b) =>
        condition.Conditions.Count == 0 ? "FALSE" : "(" + string.Join(" OR ", condition.Conditions.Select(c => For(c).Sql(b))) + ")";
}
