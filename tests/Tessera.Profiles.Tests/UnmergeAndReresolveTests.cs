using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Profiles.Tests;

/// <summary>Undoing a wrong merge, and re-resolving the whole log under (candidate) rules.</summary>
public sealed class UnmergeAndReresolveTests
{
    /// <summary>Dad has an account; Mum and Dad both sign in on the family tablet, which wrongly ties them together.</summary>
    private static async Task<string> SharedTabletAsync(TestServer server)
    {
        await server.SendAsync("identify", """{"userId":"dad","traits":{"email":"dad@example.com","name":"Dad"},"timestamp":"2026-01-01T10:00:00Z"}""");
        await server.SendAsync("identify", """{"anonymousId":"tablet","traits":{"email":"mum@example.com","name":"Mum","favourite":"tea"},"timestamp":"2026-01-02T10:00:00Z"}""");
        await server.SendAsync("track", """{"anonymousId":"tablet","event":"Order Completed","properties":{"revenue":30},"timestamp":"2026-01-02T11:00:00Z"}""");
        await server.SendAsync("identify", """{"anonymousId":"tablet","traits":{"email":"dad@example.com","name":"Dad"},"timestamp":"2026-01-03T10:00:00Z"}""");
        var merged = (await server.ProfileByAsync("email:mum@example.com"))!;
        Assert.Equal(merged.Id(), (await server.ProfileByAsync("user_id:dad"))!.Id());
        Assert.Equal("tea", merged["traits"]!["favourite"]!.GetValue<string>());
        return merged.Id();
    }

    [Fact]
    public async Task unmerge_restores_both_profiles_and_their_traits_as_if_the_merge_had_never_happened()
    {
        var dataDir = TempDirectory.Create("unmerge");
        await using var server = await TestServer.StartAsync(dataDir);
        var merged = await SharedTabletAsync(server);
        var mumBefore = (await server.GetArrayAsync($"api/profiles/{merged}/merges"))[0]!["merged"]!.GetValue<string>();

        var response = await server.Admin.PostAsJsonAsync($"api/profiles/{merged}/unmerge", new { identifier = "email:MUM@example.com" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var mum = (await server.ProfileByAsync("email:mum@example.com"))!;
        var dad = (await server.ProfileByAsync("user_id:dad"))!;
        Assert.NotEqual(mum.Id(), dad.Id());
        Assert.Equal(merged, dad.Id()); // Dad's profile came first and keeps its id
        Assert.Equal(mumBefore, mum.Id()); // Mum's profile comes back under the id it had before the merge
        Assert.Equal(["email:mum@example.com"], mum.Identifiers());
        Assert.Equal(["anonymous_id:tablet", "email:dad@example.com", "user_id:dad"], dad.Identifiers().Order());
        Assert.Equal("Mum", mum["traits"]!["name"]!.GetValue<string>());
        Assert.Equal("tea", mum["traits"]!["favourite"]!.GetValue<string>());
        Assert.Equal("Dad", dad["traits"]!["name"]!.GetValue<string>());
        Assert.Null(dad["traits"]!["favourite"]);
        // The tablet's own profile (its anonymous order) still joins Dad when the tablet signs in as Dad; Mum's never does.
        Assert.DoesNotContain(mum.Id(), dad["mergedFrom"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.DoesNotContain(mum.Id(), (await server.GetArrayAsync($"api/profiles/{dad.Id()}/merges")).Select(m => m!["merged"]!.GetValue<string>()));
        var mumEvents = (await server.Admin.GetFromJsonAsyncObject($"api/profiles/{mum.Id()}/events"))["items"]!.AsArray();
        Assert.Equal(["identify"], mumEvents.Select(e => e!["type"]!.GetValue<string>()));
        Assert.Equal(mum.Id(), mumEvents[0]!["profileId"]!.GetValue<string>());

        // The split holds after a restart, and new messages that would tie them again are kept apart.
        await server.SendAsync("identify", """{"anonymousId":"tablet","traits":{"email":"mum@example.com"}}""");
        await server.DisposeAsync();
        await using var restarted = await TestServer.StartAsync(dataDir);
        Assert.NotEqual((await restarted.ProfileByAsync("email:mum@example.com"))!.Id(), (await restarted.ProfileByAsync("user_id:dad"))!.Id());
        Assert.Equal("tea", (await restarted.ProfileByAsync("email:mum@example.com"))!["traits"]!["favourite"]!.GetValue<string>());
    }

    [Fact]
    public async Task unmerge_refuses_an_identifier_the_profile_does_not_have()
    {
        await using var server = await TestServer.StartAsync();
        var merged = await SharedTabletAsync(server);
        await server.SendAsync("identify", """{"userId":"alone"}""");
        var alone = (await server.ProfileByAsync("user_id:alone"))!.Id();

        var foreign = await server.Admin.PostAsJsonAsync($"api/profiles/{merged}/unmerge", new { identifier = "user_id:alone" });
        var only = await server.Admin.PostAsJsonAsync($"api/profiles/{alone}/unmerge", new { identifier = "user_id:alone" });
        var missing = await server.Admin.PostAsJsonAsync($"api/profiles/{merged}/unmerge", new { });

        Assert.Equal(HttpStatusCode.Conflict, foreign.StatusCode);
        Assert.Equal("identifier", (await foreign.Content.ReadFromJsonAsync<JsonObject>())!["field"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.BadRequest, only.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
    }

    [Fact]
    public async Task dry_run_with_candidate_rules_reports_merges_and_changes_nothing()
    {
        await using var server = await TestServer.StartAsync();
        // One browser, two accounts: with one user_id per profile they stay two profiles.
        await server.SendAsync("identify", """{"anonymousId":"kiosk","userId":"ana"}""");
        await server.SendAsync("identify", """{"anonymousId":"kiosk","userId":"ben"}""");
        var rules = (await server.Admin.GetFromJsonAsync<JsonObject>("api/identity/rules"))!;
        rules["types"]![0]!["maxPerProfile"] = 2; // user_id

        var response = await server.Admin.PostAsJsonAsync("api/identity/reresolve", new { dryRun = true, rules });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var report = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.True(report["dryRun"]!.GetValue<bool>());
        Assert.Equal(2, report["profilesBefore"]!.GetValue<int>());
        Assert.Equal(1, report["profilesAfter"]!.GetValue<int>());
        Assert.Equal(2, report["profilesMerging"]!.GetValue<int>());
        Assert.Equal(0, report["profilesSplitting"]!.GetValue<int>());
        Assert.NotEqual((await server.ProfileByAsync("user_id:ana"))!.Id(), (await server.ProfileByAsync("user_id:ben"))!.Id());
    }

    [Fact]
    public async Task re_resolving_under_the_same_rules_changes_nothing()
    {
        await using var server = await TestServer.StartAsync();
        await SharedTabletAsync(server);
        var before = (await server.ProfileByAsync("user_id:dad"))!;

        var response = await server.Admin.PostAsJsonAsync("api/identity/reresolve", new { dryRun = false });

        var report = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(0, report["profilesMerging"]!.GetValue<int>());
        Assert.Equal(0, report["profilesSplitting"]!.GetValue<int>());
        Assert.Equal(0, report["identifiersMoved"]!.GetValue<int>());
        var after = (await server.ProfileByAsync("user_id:dad"))!;
        Assert.Equal(before.Id(), after.Id());
        Assert.True(JsonNode.DeepEquals(before["traits"], after["traits"]));
    }

    [Fact]
    public async Task candidate_rules_cannot_be_applied_through_the_api_and_bad_rules_are_named()
    {
        await using var server = await TestServer.StartAsync();

        var apply = await server.Admin.PostAsJsonAsync("api/identity/reresolve", new { dryRun = false, rules = new { types = new[] { new { type = "email" } } } });
        var bad = await server.Admin.PostAsJsonAsync("api/identity/reresolve", new { dryRun = true, rules = new { types = new[] { new { type = "email", maxPerProfile = 0 } } } });

        Assert.Equal(HttpStatusCode.BadRequest, apply.StatusCode);
        Assert.Equal("rules", (await apply.Content.ReadFromJsonAsync<JsonObject>())!["field"]!.GetValue<string>());
        Assert.Contains("maxPerProfile", (await bad.Content.ReadFromJsonAsync<JsonObject>())!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
