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

    /// <summary>Parses text that must be valid.</summary>
    public static AudienceCondition Text(string text)
    {
        var condition = AudienceText.Parse(text, out var errors);
        Assert.True(condition is not null, $"{text}\n is invalid: {string.Join("\n ", errors)}");
        Assert.Empty(errors);
        return condition;
    }

    /// <summary>The errors of text that must be invalid.</summary>
    public static IReadOnlyList<DefinitionError> Errors(string text)
    {
        var condition = AudienceText.Parse(text, out var errors);
        Assert.True(condition is null, $"{text}\n parsed, as {(condition is null ? "" : AudienceText.Format(condition))}");
        Assert.NotEmpty(errors);
        return errors;
    }
}
