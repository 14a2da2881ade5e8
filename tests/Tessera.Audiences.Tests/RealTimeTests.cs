using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Audiences.Tests;

/// <summary>Membership follows events, traits, merges and time, with no re-scan and no manual step; every change is recorded.</summary>
public sealed class RealTimeTests
{
    [Fact]
    public async Task a_profile_enters_on_the_event_that_qualifies_it_and_the_change_names_that_message()
    {
        await using var server = await TestServer.StartAsync();
        var frequent = await server.CreateSegmentAsync("Three orders in 30 days",
            """{"event":"Order Completed","where":[{"property":"revenue","op":"gt","value":50}],"within":"30d","count":{"op":"gte","value":3}}""");
        await server.SendAsync("track", """{"userId":"buyer","event":"Order Completed","properties":{"revenue":80}}""");
        await server.SendAsync("track", """{"userId":"buyer","event":"Order Completed","properties":{"revenue":20}}""");
        await server.SendAsync("track", """{"userId":"buyer","event":"Order Completed","properties":{"revenue":60}}""");
        Assert.Empty(await server.SegmentsOfAsync("user_id:buyer"));

        await server.SendAsync("track", """{"userId":"buyer","messageId":"the-third-big-order","event":"Order Completed","properties":{"revenue":99}}""");
        Assert.Equal([frequent], await server.SegmentsOfAsync("user_id:buyer"));
        var entered = Assert.Single(await server.HistoryOfAsync("user_id:buyer"));
        Assert.Equal("entered", entered["type"]!.GetValue<string>());
        Assert.Equal("message the-third-big-order", entered["reason"]!.GetValue<string>());
        Assert.True(entered["seq"]!.GetValue<long>() > 0);
        Assert.True(DateTimeOffset.UtcNow - entered["at"]!.GetValue<DateTimeOffset>() < TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task an_entry_is_visible_and_in_the_change_log_while_the_store_commit_is_still_held()
    {
        // Each commit of the embedded store held 3 s, as a DuckDB checkpoint holds one: the engine must not wait for it.
        var held = TimeSpan.FromSeconds(3);
        await using var server = await TestServer.StartAsync(configure: o => o.CommitDelay = held);
        var pro = await server.CreateSegmentAsync("Pro", """{"trait":"plan","op":"eq","value":"pro"}""");

        var sent = System.Diagnostics.Stopwatch.StartNew();
        await server.SendAsync("identify", """{"userId":"quick","messageId":"quick-1","traits":{"plan":"pro"}}""");
        var segments = await server.SegmentsOfAsync("user_id:quick");
        var history = await server.HistoryOfAsync("user_id:quick");
        var answered = sent.Elapsed;

        Assert.Equal([pro], segments);
        var entered = Assert.Single(history);
        Assert.Equal("message quick-1", entered["reason"]!.GetValue<string>());
        if (server.Options.Store == "duckdb")
        {
            Assert.True(answered < held, $"the membership took {answered.TotalMilliseconds:F0} ms: it waited for the held commit");
        }

        // Reads of the tables still see their own writes: they wait for the commit.
        Assert.Equal(1, (await server.GetObjectAsync("api/stats"))["events"]!.GetValue<int>());
        var events = (await server.GetObjectAsync("api/events?userId=quick"))["items"]!.AsArray();
        Assert.Equal("quick-1", Assert.Single(events)!["messageId"]!.GetValue<string>());
    }

    [Fact]
    public async Task a_number_too_large_for_decimal_is_stored_and_simply_does_not_compare()
    {
        await using var server = await TestServer.StartAsync();
        var big = await server.CreateSegmentAsync("Big orders", """{"event":"Order Completed","where":[{"property":"revenue","op":"gt","value":50}]}""");
        await server.SendAsync("track", """{"userId":"huge","event":"Order Completed","properties":{"revenue":1E+400}}""");
        await server.SendAsync("track", """{"userId":"normal","event":"Order Completed","properties":{"revenue":60}}""");
        Assert.Equal([await server.ProfileIdAsync("user_id:normal")], await server.MembersAsync(big));
        Assert.Equal(2, (await server.GetObjectAsync("api/stats"))["events"]!.GetValue<int>());
    }

    [Fact]
    public async Task a_trait_change_moves_the_profile_out_and_back_in()
    {
        await using var server = await TestServer.StartAsync();
        var pro = await server.CreateSegmentAsync("Pro", """{"trait":"plan","op":"eq","value":"pro"}""");
        await server.SendAsync("identify", """{"userId":"u","traits":{"plan":"pro"}}""");
        await server.SendAsync("identify", """{"userId":"u","traits":{"plan":"free"}}""");
        await server.SendAsync("identify", """{"userId":"u","traits":{"plan":"pro"}}""");
        Assert.Equal(["entered", "exited", "entered"], (await server.HistoryOfAsync("user_id:u")).Select(h => h["type"]!.GetValue<string>()));
        Assert.Equal([pro], await server.SegmentsOfAsync("user_id:u"));
    }

    [Fact]
    public async Task people_leave_a_windowed_audience_when_time_passes_with_no_new_event()
    {
        await using var server = await TestServer.StartAsync();
        var recent = await server.CreateSegmentAsync("Active in the last 3 seconds", """{"event":"App Opened","within":"3s"}""");
        await server.SendAsync("track", """{"userId":"fleeting","event":"App Opened"}""");
        Assert.Equal([recent], await server.SegmentsOfAsync("user_id:fleeting"));

        // The membership changes in memory a moment before the exit is committed: wait for the recorded exit.
        Assert.True(await Segments.EventuallyAsync(async () => (await server.HistoryOfAsync("user_id:fleeting")).Count == 2, TimeSpan.FromSeconds(15)));
        Assert.Empty(await server.SegmentsOfAsync("user_id:fleeting"));
        var exit = (await server.HistoryOfAsync("user_id:fleeting"))[^1];
        Assert.Equal("exited", exit["type"]!.GetValue<string>());
        Assert.Equal("time window passed", exit["reason"]!.GetValue<string>());
        Assert.True(exit["seq"] is null);
    }

    [Fact]
    public async Task a_negated_window_admits_people_once_their_last_event_ages_out()
    {
        await using var server = await TestServer.StartAsync();
        var lapsed = await server.CreateSegmentAsync("Customers with no purchase in 3 seconds",
            """{"and":[{"identifier":"user_id","op":"exists"},{"not":{"event":"Order Completed","within":"3s"}}]}""");
        await server.SendAsync("track", """{"userId":"shopper","event":"Order Completed","properties":{"revenue":10}}""");
        Assert.Empty(await server.SegmentsOfAsync("user_id:shopper"));
        Assert.True(await Segments.EventuallyAsync(async () => (await server.SegmentsOfAsync("user_id:shopper")).Contains(lapsed), TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public async Task a_merge_moves_the_merged_profiles_memberships_to_the_survivor()
    {
        await using var server = await TestServer.StartAsync();
        var browsers = await server.CreateSegmentAsync("Browsed shoes", """{"event":"Product Viewed","where":[{"property":"category","op":"eq","value":"shoes"}]}""");
        var known = await server.CreateSegmentAsync("Known shoe browsers", $$$"""{"and":[{"segment":"{{{browsers}}}"},{"identifier":"email","op":"exists"}]}""");
        await server.SendAsync("identify", """{"userId":"shopper-9","traits":{"email":"nine@example.com"}}""");
        await server.SendAsync("track", """{"anonymousId":"cookie-1","event":"Product Viewed","properties":{"category":"shoes"}}""");
        var cookieProfile = await server.ProfileIdAsync("anonymous_id:cookie-1");
        Assert.Equal([browsers], await server.SegmentsOfAsync("anonymous_id:cookie-1"));
        Assert.Empty(await server.SegmentsOfAsync("user_id:shopper-9"));

        // Logging in ties the cookie to the (older) user profile: the cookie's events now count for it.
        await server.SendAsync("identify", """{"anonymousId":"cookie-1","userId":"shopper-9"}""");
        var survivor = await server.ProfileIdAsync("user_id:shopper-9");
        Assert.NotEqual(cookieProfile, survivor);
        Assert.Equal(new[] { browsers, known }.Order(StringComparer.Ordinal), (await server.SegmentsOfAsync("user_id:shopper-9")).Order(StringComparer.Ordinal));
        Assert.Equal([survivor], await server.MembersAsync(browsers));

        var history = (await server.GetObjectAsync($"api/profiles/{survivor}/segments"))["history"]!.AsArray().Select(h => h!.AsObject()).ToList();
        Assert.Contains(history, h => h["profileId"]!.GetValue<string>() == cookieProfile && h["type"]!.GetValue<string>() == "exited"
            && h["reason"]!.GetValue<string>() == $"merged into {survivor}");
        Assert.Contains(history, h => h["profileId"]!.GetValue<string>() == survivor && h["segmentId"]!.GetValue<string>() == known && h["type"]!.GetValue<string>() == "entered");
    }

    [Fact]
    public async Task unmerge_restores_both_profiles_and_their_audiences()
    {
        await using var server = await TestServer.StartAsync();
        var buyers = await server.CreateSegmentAsync("Buyers", """{"event":"Order Completed"}""");
        var readers = await server.CreateSegmentAsync("Newsletter readers", """{"event":"Email Opened"}""");
        await server.SendAsync("track", """{"userId":"kim","event":"Order Completed","properties":{"revenue":5}}""");
        await server.SendAsync("track", """{"anonymousId":"shared-tablet","event":"Email Opened"}""");
        // A shared device logs in as kim: the tablet's history wrongly joins kim's profile.
        await server.SendAsync("identify", """{"anonymousId":"shared-tablet","userId":"kim"}""");
        var kim = await server.ProfileIdAsync("user_id:kim");
        Assert.Equal(new[] { buyers, readers }.Order(StringComparer.Ordinal), (await server.SegmentsOfAsync("user_id:kim")).Order(StringComparer.Ordinal));

        var unmerge = await server.Admin.PostAsync($"api/profiles/{kim}/unmerge", Segments.Json("""{"identifier":"anonymous_id:shared-tablet"}"""));
        Assert.True(unmerge.IsSuccessStatusCode, await unmerge.Content.ReadAsStringAsync());

        Assert.Equal([buyers], await server.SegmentsOfAsync("user_id:kim"));
        Assert.Equal([readers], await server.SegmentsOfAsync("anonymous_id:shared-tablet"));
        var tablet = await server.ProfileIdAsync("anonymous_id:shared-tablet");
        Assert.Equal([tablet], await server.MembersAsync(readers));
        var history = await server.HistoryOfAsync("user_id:kim");
        Assert.Contains(history, h => h["type"]!.GetValue<string>() == "exited" && h["segmentId"]!.GetValue<string>() == readers && h["reason"]!.GetValue<string>() == "identities re-resolved");
    }

    [Fact]
    public async Task memberships_survive_a_restart_and_time_that_passed_while_down_is_recorded_at_start()
    {
        var dataDir = TempDirectory.Create("audiences-restart");
        string pro, recent;
        await using (var server = await TestServer.StartAsync(dataDir))
        {
            pro = await server.CreateSegmentAsync("Pro", """{"trait":"plan","op":"eq","value":"pro"}""");
            recent = await server.CreateSegmentAsync("Seen in the last 4 seconds", """{"event":"Heartbeat","within":"4s"}""");
            await server.SendAsync("identify", """{"userId":"kept","traits":{"plan":"pro"}}""");
            await server.SendAsync("track", """{"userId":"kept","event":"Heartbeat"}""");
            Assert.Equal(new[] { pro, recent }.Order(StringComparer.Ordinal), (await server.SegmentsOfAsync("user_id:kept")).Order(StringComparer.Ordinal));
        }

        await Task.Delay(TimeSpan.FromSeconds(5));
        await using var restarted = await TestServer.StartAsync(dataDir);
        Assert.Equal([pro], await restarted.SegmentsOfAsync("user_id:kept"));
        var history = await restarted.HistoryOfAsync("user_id:kept");
        Assert.Equal("exited re-evaluated at start", $"{history[^1]["type"]} {history[^1]["reason"]}");
        Assert.Equal(2, (await restarted.Admin.GetFromJsonAsyncArray("api/segments")).Count);
    }
}

internal static class AdminExtensions
{
    public static async Task<JsonArray> GetFromJsonAsyncArray(this HttpClient client, string path) =>
        (await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<JsonArray>(client, path))!;
}
