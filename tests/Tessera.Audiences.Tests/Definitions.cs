using Tessera.Core.Audiences;

namespace Tessera.Audiences.Tests;

/// <summary>Parsing and comparing definitions in tests: two definitions are equal when their canonical JSON is.</summary>
internal static class Definitions
{
    public static string Canonical(AudienceCondition condition) => AudienceDefinition.ToJson(condition).ToJsonString();

    /// <summary>The canonical form of a JSON definition that must be valid.</summary>
    public static string CanonicalJson(string json)
    {
        var condition = AudienceDefinition.Parse(json, out var errors);
        Assert.True(condition is not null, $"{json} is invalid: {string.Join("; ", errors)}");
        return Canonical(condition);
    }
}
