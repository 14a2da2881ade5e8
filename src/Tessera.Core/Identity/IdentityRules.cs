using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace Tessera.Core.Identity;

/// <summary>
/// The identity configuration a data engineer reads, versions and changes: the identifier types, where each comes
/// from, how it is normalised, blocked values, limits and priorities. Load it from JSON with <see cref="Parse"/>;
/// <see cref="Default"/> is what Tessera uses without a file.
/// </summary>
public sealed record IdentityRules
{
    /// <summary>Values that are placeholders, not people. Applied to every type on top of its own list.</summary>
    public static readonly IReadOnlyList<string> CommonBlockedValues =
        ["null", "undefined", "nil", "none", "0", "-1", "n/a", "na", "unknown", "anonymous", "test", "test@test.com", "test@example.com", "noreply@example.com", "[object object]"];

    public IReadOnlyList<IdentifierTypeRule> Types { get; init; } = [];

    /// <summary>ISO 3166 region for phone numbers written without a country code.</summary>
    public string DefaultRegion { get; init; } = "US";

    public static IdentityRules Default { get; } = new()
    {
        Types =
        [
            new() { Type = "user_id", Priority = 100, MaxPerProfile = 1, Paths = ["userId"] },
            new() { Type = "email", Priority = 80, MaxPerProfile = 5, Normalize = Normalization.Email, Paths = ["traits.email", "context.traits.email", "properties.email"] },
            new() { Type = "phone", Priority = 70, MaxPerProfile = 5, Normalize = Normalization.Phone, Paths = ["traits.phone", "context.traits.phone", "properties.phone"] },
            new() { Type = "anonymous_id", Priority = 10, MaxPerProfile = 1000, Paths = ["anonymousId"] },
        ],
    };

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Reads rules from JSON and checks them; errors name the offending entry.</summary>
    public static IdentityRules Parse(string json)
    {
        IdentityRules? rules;
        try
        {
            rules = JsonSerializer.Deserialize<IdentityRules>(json, Json);
        }
        catch (JsonException e)
        {
            throw new FormatException($"identity rules: {e.Message}", e);
        }

        if (rules is null || rules.Types.Count == 0) { throw new FormatException("identity rules: 'types' must list at least one identifier type"); }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < rules.Types.Count; i++)
        {
            var type = rules.Types[i];
            var where = $"identity rules: types[{i}]";
            if (string.IsNullOrWhiteSpace(type.Type) || type.Type.Contains(':', StringComparison.Ordinal)) { throw new FormatException($"{where}.type must be a name without ':'"); }
            if (!seen.Add(type.Type)) { throw new FormatException($"{where}.type '{type.Type}' is listed twice"); }
            if (type.MaxPerProfile is < 1) { throw new FormatException($"{where}.maxPerProfile must be at least 1"); }
            foreach (var pattern in type.BlockedPatterns)
            {
                try
                {
                    _ = new Regex(pattern, RegexOptions.None, TimeSpan.FromMilliseconds(50));
                }
                catch (ArgumentException e)
                {
                    throw new FormatException($"{where}.blockedPatterns: '{pattern}' is not a valid regular expression: {e.Message}", e);
                }
            }
        }

        return rules;
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public IdentifierTypeRule? Find(string type)
    {
        foreach (var rule in Types)
        {
            if (rule.Type == type) { return rule; }
        }

        return null;
    }
}
