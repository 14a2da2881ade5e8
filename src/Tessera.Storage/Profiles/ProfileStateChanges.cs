using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;

namespace Tessera.Storage.Profiles;

/// <summary>
/// What one append changes in the profile state tables that audiences read in SQL (<c>profile_ids</c>,
/// <c>profile_identifiers</c>, <c>profile_traits</c>), worked out from the engine's output for the batch and its
/// state after it. Only the profiles the batch touched appear.
/// </summary>
internal sealed record ProfileStateChanges(
    IReadOnlyList<string> Created,
    IReadOnlyList<(string Merged, string Live)> Merges,
    IReadOnlyList<(string ProfileId, Identifier Identifier)> Links,
    IReadOnlyList<TraitRow> Traits)
{
    public bool IsEmpty => Created.Count + Merges.Count + Links.Count + Traits.Count == 0;

    /// <summary>
    /// New ids map to themselves; every id merged in the batch maps to its live profile after the batch (so rows that
    /// pointed at it follow); links are appended under the profile they were made to (merges reach them through
    /// <c>profile_ids</c>); the traits of every live profile whose traits changed or that absorbed another are written whole.
    /// </summary>
    public static ProfileStateChanges Of(IReadOnlyList<ProcessedEvent> processed, ProfileEngine engine)
    {
        List<string>? created = null;
        List<(string, string)>? merges = null;
        List<(string, Identifier)>? links = null;
        HashSet<string>? touched = null;
        foreach (var p in processed)
        {
            foreach (var c in p.Changes)
            {
                switch (c.Kind)
                {
                    case IdentityChangeKind.Created:
                        (created ??= []).Add(c.ProfileId!);
                        break;
                    case IdentityChangeKind.Merged:
                        (merges ??= []).Add((c.OtherProfileId!, c.ProfileId!));
                        (touched ??= new HashSet<string>(StringComparer.Ordinal)).Add(c.ProfileId!);
                        break;
                    case IdentityChangeKind.Linked:
                        (links ??= []).Add((c.ProfileId!, c.Identifier!.Value));
                        break;
                    case IdentityChangeKind.Dropped:
                    case IdentityChangeKind.Rejected:
                    default:
                        break;
                }
            }

            foreach (var t in p.Traits) { (touched ??= new HashSet<string>(StringComparer.Ordinal)).Add(t.ProfileId); }
        }

        var finalMerges = new List<(string Merged, string Live)>();
        if (merges is not null)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (merged, _) in merges)
            {
                if (seen.Add(merged)) { finalMerges.Add((merged, engine.SurvivorOf(merged)!)); }
            }
        }

        var traits = new List<TraitRow>();
        if (touched is not null)
        {
            var live = new HashSet<string>(StringComparer.Ordinal);
            foreach (var id in touched)
            {
                if (engine.SurvivorOf(id) is { } survivor && live.Add(survivor) && engine.TraitsOf(survivor) is { } current)
                {
                    foreach (var (name, value) in current) { traits.Add(TraitRow.Of(survivor, name, value.Value)); }
                }
            }
        }

        return new ProfileStateChanges(created ?? [], finalMerges, links ?? [], traits);
    }
}

/// <summary>
/// One current trait as <c>profile_traits</c> keeps it: the JSON text, and typed columns (<see cref="TypedValue"/>), so
/// trait conditions compare columns instead of parsing JSON.
/// </summary>
internal readonly record struct TraitRow(string ProfileId, string Name, string? Json, string Kind, string? Text, decimal? Number, DateTimeOffset? Instant)
{
    public static TraitRow Of(string profileId, string name, JsonNode? value)
    {
        if (value is null) { return new TraitRow(profileId, name, null, "null", null, null, null); }
        var json = value.ToJsonString();
        using var document = JsonDocument.Parse(json);
        var typed = TypedValue.Of(document.RootElement);
        return new TraitRow(profileId, name, json, typed.Kind, typed.Kind == "null" ? null : typed.Text, typed.Number, typed.Instant);
    }
}
