using Tessera.Core.Identity;

namespace Tessera.Core.Profiles;

/// <summary>A consistent copy of one live profile, safe to hand to the API.</summary>
public sealed record ProfileView(
    string Id,
    DateTimeOffset CreatedAt,
    IReadOnlyList<Identifier> Identifiers,
    IReadOnlyDictionary<string, TraitValue> Traits,
    IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonNode?> Computed,
    IReadOnlyList<string> MergedFrom);
