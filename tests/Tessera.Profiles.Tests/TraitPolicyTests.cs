using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Profiles.Tests;

/// <summary>Trait merge policies from a profile rules file: first, highest, lowest, source priority, and latest by default.</summary>
public sealed class TraitPolicyTests
{
    [Fact]
    public async Task each_trait_follows_its_configured_policy()
    {
        var dir = TempDirectory.Create("policies");
        var rules = Path.Combine(dir, "profile-rules.json");
        await File.WriteAllTextAsync(rules, """
            {"defaultPolicy": "latest",
             "traits": {"first_channel": "first", "best_score": "highest", "lowest_price_seen": "lowest", "legal_name": "source_priority"},
             "sourcePriority": ["crm"]}
            """);
        await using var server = await TestServer.StartAsync(dir, o => o.ProfileRulesFile = rules);
        var crm = (await (await server.Admin.PostAsJsonAsync("api/sources", new { name = "crm" })).Content.ReadFromJsonAsync<JsonObject>())!["writeKey"]!.GetValue<string>();

        await server.SendAsync("identify", """{"userId":"pol-1","traits":{"first_channel":"ads","best_score":5,"lowest_price_seen":30,"legal_name":"Ann S.","city":"Oslo"},"timestamp":"2026-01-01T00:00:00Z"}""");
        await server.Anonymous.PostAsync("v1/identify", new StringContent($$"""{"writeKey":"{{crm}}","userId":"pol-1","traits":{"legal_name":"Ann Smith"},"timestamp":"2026-01-02T00:00:00Z"}""", Encoding.UTF8, "application/json"));
        await server.SendAsync("identify", """{"userId":"pol-1","traits":{"first_channel":"email","best_score":3,"lowest_price_seen":12,"legal_name":"annie","city":"Bergen"},"timestamp":"2026-02-01T00:00:00Z"}""");
        await server.SendAsync("identify", """{"userId":"pol-1","traits":{"best_score":9,"lowest_price_seen":20},"timestamp":"2026-03-01T00:00:00Z"}""");

        var traits = (await server.ProfileByAsync("user_id:pol-1"))!["traits"]!;
        Assert.Equal("ads", traits["first_channel"]!.GetValue<string>());
        Assert.Equal(9, traits["best_score"]!.GetValue<int>());
        Assert.Equal(12, traits["lowest_price_seen"]!.GetValue<int>());
        Assert.Equal("Ann Smith", traits["legal_name"]!.GetValue<string>()); // the CRM wins over later web values
        Assert.Equal("Bergen", traits["city"]!.GetValue<string>()); // latest by default
    }

    [Fact]
    public async Task an_unknown_policy_stops_start_up_naming_the_trait()
    {
        var dir = TempDirectory.Create("bad-policy");
        var rules = Path.Combine(dir, "profile-rules.json");
        await File.WriteAllTextAsync(rules, """{"traits": {"plan": "loudest"}}""");

        var error = await Assert.ThrowsAsync<ArgumentException>(() => TestServer.StartAsync(dir, o => o.ProfileRulesFile = rules));

        Assert.Contains("$.traits.plan", error.Message, StringComparison.Ordinal);
    }
}
