using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Tessera.Testing;

namespace Tessera.Process.Tests;

/// <summary>The README's first command, <c>tessera serve --demo</c>, as a newcomer runs it and follows its banner.</summary>
public sealed partial class DemoTests
{
    [Fact]
    public async Task serve_demo_seeds_the_store_and_the_customer_its_banner_offers_to_look_up_is_found()
    {
        var dataDir = TempDirectory.Create("demo");
        await using var tessera = await TesseraProcess.StartServeAsync(dataDir, "--demo");
        using var admin = Http.Admin(tessera.BaseAddress);

        var stats = (await admin.GetFromJsonAsync<JsonObject>("api/stats"))!;
        var lookup = await EventuallyAsync(() => CustomerLine().Match(tessera.Output) is { Success: true } m ? m.Groups["path"].Value : null);
        using var response = await admin.GetAsync(lookup);

        Assert.True(stats["events"]!.GetValue<long>() > 1000, $"the demo seeded {stats["events"]} events");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var profile = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        var email = lookup[(lookup.IndexOf("email:", StringComparison.Ordinal) + "email:".Length)..];
        Assert.Contains(profile["identifiers"]!.AsArray(), i => (string?)i!["type"] == "email" && (string?)i["value"] == email);
    }

    private static async Task<string> EventuallyAsync(Func<string?> read)
    {
        for (var i = 0; i < 100; i++)
        {
            if (read() is { } value) { return value; }
            await Task.Delay(100);
        }

        throw new TimeoutException("the banner never offered a customer to look up");
    }

    [GeneratedRegex(@"a customer:\s+GET \S+?/(?<path>api/profiles\?identifier=email:\S+)")]
    private static partial Regex CustomerLine();
}
