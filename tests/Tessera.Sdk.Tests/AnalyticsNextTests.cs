using System.Text.Json.Nodes;

namespace Tessera.Sdk.Tests;

/// <summary><c>@segment/analytics-next</c>'s default delivery: one text/plain request per call, to the short paths.</summary>
public sealed class AnalyticsNextTests(AnalyticsNextTests.Run run) : IClassFixture<AnalyticsNextTests.Run>
{
    public sealed class Run() : AnalyticsNextRun(batching: false);

    [Fact]
    public void analytics_next_loads_its_settings_from_tessera_across_origins()
    {
        run.AssertNoBrowserErrors();
        var settings = Assert.Single(run.Report.Requests, r => (string?)r["method"] == "GET");
        Assert.Equal($"{run.TesseraOrigin}/v1/projects/{Tessera.Testing.TestServer.WriteKey}/settings", (string?)settings["url"]);
        Assert.Equal(200, (int?)settings["response"]!["status"]);
        Assert.Equal(run.PageOrigin, (string?)settings["response"]!["allowOrigin"]);

        // The settings send the SDK back to Tessera: without them it would post to Segment's own API.
        var body = JsonNode.Parse((string)settings["response"]!["body"]!)!;
        Assert.Equal($"{run.Server.BaseAddress.Authority}/v1", (string?)body["integrations"]!["Segment.io"]!["apiHost"]);
        Assert.Equal("http", (string?)body["integrations"]!["Segment.io"]!["protocol"]);
    }

    [Fact]
    public void analytics_next_sends_each_call_as_text_plain_to_its_short_path()
    {
        run.AssertNoBrowserErrors();
        run.AssertCrossOriginTextPlainPosts();
        run.AssertPageCallsMatchSentMessages();
        foreach (var sent in run.Report.Sent)
        {
            Assert.Equal($"{run.TesseraOrigin}/v1/{sent.Type[0]}", (string?)sent.Request["url"]);
        }

        Assert.Equal(["a", "g", "i", "p", "s", "t"], run.Report.Sent.Select(s => s.Type[..1]).Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public void analytics_next_messages_are_all_stored_exactly_as_sent() => SdkAssert.EveryMessageStoredAsSent(run, AnalyticsNextRun.Calls);

    [Fact]
    public void analytics_next_messages_keep_segment_timestamps() => SdkAssert.EveryMessageHasSegmentTimestamps(run);

    [Fact]
    public void analytics_next_track_arrives_with_properties_and_the_page_context()
    {
        var (_, stored) = run.Call("track", "Order Completed");
        Assert.Equal(run.UserId, (string?)stored["userId"]);
        Assert.Equal(run.AnonymousId, (string?)stored["anonymousId"]);
        SdkAssert.Json($$"""{"orderId":"order-{{run.RunId}}","revenue":42.5,"currency":"EUR","products":[{"sku":"p-42","quantity":2}]}""", stored["properties"], "track properties");
        Assert.Equal("newsletter", (string?)stored["context"]!["campaign"]!["source"]);
        Assert.Equal($"{run.PageOrigin}/", (string?)stored["context"]!["page"]!["url"]);
        Assert.Equal("Tessera SDK test shop", (string?)stored["context"]!["page"]!["title"]);
        Assert.Contains("HeadlessChrome", (string?)stored["context"]!["userAgent"], StringComparison.Ordinal);
        Assert.Equal("analytics.js", (string?)stored["context"]!["library"]!["name"]);
        Assert.Equal($"npm:next-{run.Report.Library}", (string?)stored["context"]!["library"]!["version"]);
    }

    [Fact]
    public void analytics_next_alias_links_the_browser_anonymous_id_to_the_user()
    {
        var (_, before) = run.Call("track", "Product Viewed");
        Assert.Equal(run.AnonymousId, (string?)before["anonymousId"]);
        Assert.Null(before["userId"]);

        var (_, alias) = run.Call("alias");
        Assert.Equal(run.UserId, (string?)alias["userId"]);
        Assert.Equal(run.AnonymousId, (string?)alias["previousId"]);

        // One anonymousId on every message from this browser.
        Assert.All(run.Stored, e => Assert.Equal(run.AnonymousId, (string?)e["anonymousId"]));
    }

    [Fact]
    public async Task analytics_next_events_are_found_by_the_browser_anonymous_id_and_the_user_id()
    {
        Assert.Equal(AnalyticsNextRun.Calls, (await run.QueryMessageIdsAsync($"anonymousId={run.AnonymousId}")).Count);
        Assert.Equal(run.SentMessageIds(m => (string?)m["userId"] == run.UserId), await run.QueryMessageIdsAsync($"userId={run.UserId}"));
        Assert.Equal(AnalyticsNextRun.Calls - 1, (await run.QueryMessageIdsAsync($"userId={run.UserId}")).Count);
    }

    [Fact]
    public void analytics_next_identify_page_screen_and_group_arrive_with_their_fields()
    {
        var (_, identify) = run.Call("identify");
        Assert.Equal(run.UserId, (string?)identify["userId"]);
        SdkAssert.Json($$"""{"email":"ada-{{run.RunId}}@example.com","name":"Ada Lovelace","plan":"pro","logins":3}""", identify["traits"], "identify traits");

        var (_, page) = run.Call("page", "Pricing");
        Assert.Equal("Docs", (string?)page["category"]);
        Assert.Equal("Pricing", (string?)page["properties"]!["title"]);
        Assert.Equal($"{run.PageOrigin}/", (string?)page["properties"]!["url"]);

        var (_, screen) = run.Call("screen", "Home");
        Assert.Equal("dark", (string?)screen["properties"]!["variant"]);

        var (_, group) = run.Call("group");
        Assert.Equal($"acme-{run.RunId}", (string?)group["groupId"]);
        SdkAssert.Json("""{"name":"Acme Inc","employees":42}""", group["traits"], "group traits");
        Assert.All([identify, page, screen, group], e => Assert.Equal(run.UserId, (string?)e["userId"]));
    }
}
