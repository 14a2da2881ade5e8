using Tessera.Core.Audiences;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// <c>{"identifier": type, ...}</c> over <c>profile_identifiers</c> (reaching live profiles through
/// <c>profile_ids</c>): <c>exists</c> = has one; <c>not_exists</c>, <c>neq</c>, <c>not_in</c> = none matches the
/// positive form; any other op = some value satisfies it.
/// </summary>
internal sealed class IdentifierFragment(IdentifierCondition condition) : AudienceFragment
{
    public override string Sql(AudienceSqlBuilder b)
    {
        var (op, negate) = condition.Op switch
        {
            "not_exists" => ("exists", true),
            "neq" => ("eq", true),
            "not_in" => ("in", true),
            var other => (other, false),
        };
        var type = b.Dialect.Text(b.Bind(condition.Type));
        var holds = ValueTest.Sql(b, op, b.Dialect.TextColumn("i.id_value"), condition.Value);
        var (live, join) = b.LiveProfile("i.profile_id");
        return In($"SELECT {live} FROM profile_identifiers i {join} WHERE i.id_type = {type} AND {holds}", negate);
    }
}
