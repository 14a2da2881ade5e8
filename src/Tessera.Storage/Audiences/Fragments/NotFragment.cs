using Tessera.Core.Audiences;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary><c>{"not": C}</c>. Safe because every fragment is TRUE or FALSE, never NULL.</summary>
internal sealed class NotFragment(NotCondition condition) : AudienceFragment
{
    public override string Sql(AudienceSqlBuilder b) => $"(NOT {For(condition.Condition).Sql(b)})";
}
