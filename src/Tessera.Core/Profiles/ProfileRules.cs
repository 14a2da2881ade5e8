using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tessera.Core.Profiles;

/// <summary>
/// Trait merge policies: one per named trait, a default for the rest, and the source order for
/// <see cref="TraitPolicy.SourcePriority"/> (source names or ids, most trusted first). Read from JSON with
/// <see cref="Parse"/>, e.g. <c>{"defaultPolicy":"latest","traits":{"first_seen_channel":"first","lifetime_value":"highest"},
/// "sourcePriority":["crm","web"]}</c>.
/// </summary>
public sealed record ProfileRules
{
    public TraitPolicy DefaultPolicy { get; init; } = TraitPolicy.Latest;

    public IReadOnlyDictionary<string, TraitPolicy> Traits { get; init; } = new Dictionary<string, TraitPolicy>();

    /// <summary>Source names or ids, most trusted first.</summary>
    public IReadOnlyList<string> SourcePriority { get; init; } = [];

    public static ProfileRules Default { get; } = new();

    public TraitPolicy PolicyFor(string trait) => Traits.TryGetValue(trait, out var policy) ? policy : DefaultPolicy;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false) },
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Reads the rules; an unknown policy is an error naming the trait.</summary>
    public static ProfileRules Parse(string json)
    {
        try
        {
            var rules = JsonSerializer.Deserialize<ProfileRules>(json, Json) ?? Default;
            if (rules.Traits.Values.Contains(TraitPolicy.SourcePriority) || rules.DefaultPolicy == TraitPolicy.SourcePriority)
            {
                if (rules.SourcePriority.Count == 0) { throw new FormatException("profile rules: sourcePriority must list sources when a trait uses the source_priority policy"); }
            }

            return rules;
        }
        catch (JsonException e)
        {
            throw new FormatException($"profile rules: {e.Path}: use one of latest, first, highest, lowest, source_priority ({e.Message})", e);
        }
    }
}
