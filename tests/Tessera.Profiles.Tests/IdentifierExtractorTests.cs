using System.Text.Json;
using Tessera.Core.Identity;

namespace Tessera.Profiles.Tests;

/// <summary>
/// Reading a message's identifiers at the rules' paths: every path, in the rules' order; a name given twice counting as
/// its last (as a lookup by name does); names written with escapes; and context.externalIds.
/// </summary>
public sealed class IdentifierExtractorTests
{
    private static readonly IdentifierExtractor Extractor = new(IdentityRules.Default);

    private static (List<Identifier> Identifiers, List<RejectedIdentifier> Rejected) Extract(string json)
    {
        using var document = JsonDocument.Parse(json);
        return Extractor.Extract(document.RootElement);
    }

    [Fact]
    public void every_path_of_the_rules_is_read_and_the_identifiers_come_in_the_rules_order()
    {
        var (identifiers, rejected) = Extract("""
            {"anonymousId":"anon-1","properties":{"email":"p@example.com"},"context":{"traits":{"email":"c@example.com"}},
             "traits":{"email":"T@Example.com"},"userId":42}
            """);

        Assert.Empty(rejected);
        Assert.Equal(
            [new("user_id", "42"), new("email", "t@example.com"), new("email", "c@example.com"), new("email", "p@example.com"), new("anonymous_id", "anon-1")],
            identifiers);
    }

    [Fact]
    public void a_name_given_twice_counts_as_its_last_as_a_lookup_by_name_reads_it()
    {
        const string json = """
            {"traits":{"email":"first@example.com"},"userId":"u-1","context":{"traits":{"email":"c1@example.com"}},
             "traits":{"name":"No Email"},"userId":"u-2","context":{"traits":{"email":"c2@example.com"},"traits":"not an object"},
             "properties":{"email":"p1@example.com","email":"p2@example.com"}}
            """;

        var (identifiers, _) = Extract(json);

        Assert.Equal([new("user_id", "u-2"), new("email", "p2@example.com")], identifiers);
        // The same values a lookup by name finds (it takes the last member of a name).
        using var document = JsonDocument.Parse(json);
        Assert.Equal("u-2", document.RootElement.GetProperty("userId").GetString());
        Assert.False(document.RootElement.GetProperty("traits").TryGetProperty("email", out _));
        Assert.Equal(JsonValueKind.String, document.RootElement.GetProperty("context").GetProperty("traits").ValueKind);
    }

    [Fact]
    public void names_written_with_escapes_are_read_as_the_names_they_spell()
    {
        var (identifiers, _) = Extract("""{"user\u0049d":"u-7","tr\u0061its":{"em\u0061il":"e@example.com"}}""");

        Assert.Equal([new("user_id", "u-7"), new("email", "e@example.com")], identifiers);
    }

    [Fact]
    public void external_ids_of_configured_types_are_read_and_others_refused_naming_their_place()
    {
        var (identifiers, rejected) = Extract("""
            {"context":{"externalIds":[{"type":"loyalty","id":"L-1"}]},"anonymousId":"a-1",
             "context":{"traits":{"email":"x@example.com"},"externalIds":[{"type":"email","id":"ext@example.com"},{"id":"no type"},{"type":"loyalty","id":"L-2"}]}}
            """);

        Assert.Equal([new("email", "x@example.com"), new("anonymous_id", "a-1"), new("email", "ext@example.com")], identifiers);
        var refusal = Assert.Single(rejected);
        Assert.Equal(("loyalty", "L-2", "context.externalIds[2]"), (refusal.Type, refusal.RawValue, refusal.Path));
    }
}
