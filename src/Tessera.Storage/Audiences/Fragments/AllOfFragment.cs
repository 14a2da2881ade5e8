using Tessera.Core.Audiences;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary><c>{"and": [...]}</c>: every part holds (TRUE for none, as <c>All</c> gives).</summary>
internal sealed class AllOfFragment(AllOf condition) : AudienceFragment
{
    public override string Sql(AudienceSqlBuilder b) =>
        condition.Conditions.Count == 0 ? "TRUE" : "(" + string.Join(" AND ", condition.Conditions.Select(c => For(c).Sql(b))) + ")";
}
