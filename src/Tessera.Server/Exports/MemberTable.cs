using System.Text.Json.Nodes;
using Tessera.Core.Profiles;

namespace Tessera.Server.Exports;

/// <summary>
/// The members of an audience as a table: <c>profile_id</c>, then <c>identifiers.TYPE</c> (values joined by
/// <c>|</c>), <c>traits.NAME</c> and <c>computed.NAME</c> columns, one row per member in the order given (id order
/// from <see cref="ProfileEngine.Members"/>). Values are text: strings as they are; numbers, booleans, objects and
/// arrays as JSON; absent as null. Shared by <c>tessera export segment</c> and file destinations.
/// </summary>
public sealed record MemberTable(IReadOnlyList<string> Columns, IReadOnlyList<string?[]> Rows)
{
    /// <summary>Builds the table of <paramref name="members"/> (profiles merged away meanwhile are left out).</summary>
    /// <param name="traits">Only these traits or computed traits, in this order (a name that is both gives both columns); empty: all.</param>
    public static MemberTable Of(ProfileEngine engine, IEnumerable<string> members, IReadOnlyList<string>? traits = null)
    {
        var profiles = members.Select(id => engine.Get(id)).OfType<ProfileView>().ToList();
        var columns = new List<string> { "profile_id" };
        columns.AddRange(profiles.SelectMany(p => p.Identifiers.Select(i => i.Type)).Distinct().Order(StringComparer.Ordinal).Select(t => $"identifiers.{t}"));
        if (traits is { Count: > 0 })
        {
            var present = profiles.SelectMany(p => p.Traits.Keys).ToHashSet(StringComparer.Ordinal);
            var computed = profiles.SelectMany(p => p.Computed.Keys).ToHashSet(StringComparer.Ordinal);
            foreach (var name in traits)
            {
                // A chosen trait no member has is still a column: the file's shape does not depend on who is in it.
                if (present.Contains(name) || !computed.Contains(name)) { columns.Add($"traits.{name}"); }
                if (computed.Contains(name)) { columns.Add($"computed.{name}"); }
            }
        }
        else
        {
            columns.AddRange(profiles.SelectMany(p => p.Traits.Keys).Distinct().Order(StringComparer.Ordinal).Select(t => $"traits.{t}"));
            columns.AddRange(profiles.SelectMany(p => p.Computed.Keys).Distinct().Order(StringComparer.Ordinal).Select(t => $"computed.{t}"));
        }

        var index = columns.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i, StringComparer.Ordinal);
        var rows = new List<string?[]>(profiles.Count);
        foreach (var p in profiles)
        {
            var row = new string?[columns.Count];
            row[0] = p.Id;
            foreach (var group in p.Identifiers.GroupBy(i => i.Type)) { row[index[$"identifiers.{group.Key}"]] = string.Join('|', group.Select(i => i.Value).Order(StringComparer.Ordinal)); }
            foreach (var (name, value) in p.Traits)
            {
                if (index.TryGetValue($"traits.{name}", out var at)) { row[at] = Text(value.Value); }
            }

            foreach (var (name, value) in p.Computed)
            {
                if (index.TryGetValue($"computed.{name}", out var at)) { row[at] = Text(value); }
            }

            rows.Add(row);
        }

        return new MemberTable(columns, rows);
    }

    /// <summary>Strings as they are; numbers, booleans, objects and arrays as JSON; null as null.</summary>
    public static string? Text(JsonNode? value) =>
        value is null ? null : value is JsonValue v && v.TryGetValue<string>(out var s) ? s : value.ToJsonString();
}
