using System.Data.Common;
using System.Text.Json;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;

namespace Tessera.Storage.Profiles;

/// <summary>How identity and trait rows map to columns, the same for every store.</summary>
internal static class ProfileRows
{
    public const string IdentityColumns = "seq, ordinal, kind, profile_id, other_profile_id, id_type, id_value, occurred_at, cause, detail, identifiers";
    public const string TraitColumns = "seq, profile_id, name, value, occurred_at, source_id";

    public static string? IdentifiersJson(IReadOnlyList<Identifier> identifiers) =>
        identifiers.Count == 0 ? null : JsonSerializer.Serialize(identifiers.Select(i => i.ToString()));

    public static IdentityChange ReadIdentity(DbDataReader r)
    {
        string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        var identifiers = Text(10) is { } json
            ? JsonSerializer.Deserialize<string[]>(json)!.Select(t => Identifier.TryParse(t, out var id) ? id : default).ToList()
            : [];
        return new IdentityChange(
            r.GetInt64(0), r.GetInt32(1), Enum.Parse<IdentityChangeKind>(r.GetString(2)), Text(3), Text(4),
            Text(5) is { } type ? new Identifier(type, r.GetString(6)) : null,
            r.GetFieldValue<DateTimeOffset>(7).ToUniversalTime(), r.GetString(8), Text(9), identifiers);
    }

    public static IdentitySeparation ReadSeparation(DbDataReader r) => new(
        new Identifier(r.GetString(0), r.GetString(1)),
        JsonSerializer.Deserialize<string[]>(r.GetString(2))!.Select(t => Identifier.TryParse(t, out var id) ? id : default).ToList(),
        r.GetFieldValue<DateTimeOffset>(3).ToUniversalTime(),
        r.GetString(4));

    public static TraitChange ReadTrait(DbDataReader r) => new(
        r.GetString(1),
        r.GetString(2),
        new TraitValue(r.IsDBNull(3) ? null : TraitJson.Parse(r.GetString(3)), r.GetFieldValue<DateTimeOffset>(4).ToUniversalTime(), r.GetInt64(0), r.GetString(5)));
}
