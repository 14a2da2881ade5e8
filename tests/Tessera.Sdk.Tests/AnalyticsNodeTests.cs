using System.Text;
using Tessera.Testing;

namespace Tessera.Sdk.Tests;

/// <summary><c>@segment/analytics-node</c> pointed at Tessera with <c>host</c>: identify, track, page, screen, group, alias, flush.</summary>
public sealed class AnalyticsNodeTests(AnalyticsNodeTests.Run run) : IClassFixture<AnalyticsNodeTests.Run>
{
    public sealed class Run : SdkRun
    {
        protected override Task<SdkReport> RunSdkAsync(Uri tessera) =>
            NodeScript.RunAsync("analytics-node.mjs", TimeSpan.FromSeconds(60), null, tessera.ToString(), TestServer.WriteKey, RunId);
    }

    [Fact]
    public void analytics_node_sends_its_batches_to_v1_batch_with_the_write_key_and_tessera_accepts_each()
    {
        SdkAssert.EveryRequestSucceeded(run);
        var basic = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(TestServer.WriteKey + ":"));
        Assert.All(run.Report.Requests, r =>
        {
            Assert.Equal(new Uri(run.Server.BaseAddress, "v1/batch").ToString(), (string?)r["url"]);
            Assert.Equal(basic, (string?)r["headers"]!["Authorization"]);
        });
        // flushAt is 3 in the script: the seven calls go out in several batches, the last one by flush().
        Assert.InRange(run.Report.Requests.Count, 2, 7);
    }

    [Fact]
    public void analytics_node_messages_are_all_stored_exactly_as_sent() => SdkAssert.EveryMessageStoredAsSent(run, expectedMessages: 7);

    [Fact]
    public void analytics_node_messages_keep_segment_timestamps() => SdkAssert.EveryMessageHasSegmentTimestamps(run);

    [Fact]
    public void analytics_node_identify_arrives_with_traits_and_context()
    {
        var (_, stored) = run.Call("identify");
        Assert.Equal(run.UserId, (string?)stored["userId"]);
        Assert.Equal($"anon-{run.RunId}", (string?)stored["anonymousId"]);
        SdkAssert.Json($$"""{"email":"ada-{{run.RunId}}@example.com","name":"Ada Lovelace","plan":"pro","logins":3}""", stored["traits"], "identify traits");
        Assert.Equal("203.0.113.7", (string?)stored["context"]!["ip"]);
        AssertLibrary(stored);
    }

    [Fact]
    public void analytics_node_track_arrives_with_properties_and_context()
    {
        var (_, stored) = run.Call("track", "Order Completed");
        Assert.Equal(run.UserId, (string?)stored["userId"]);
        Assert.Equal("Order Completed", (string?)stored["event"]);
        SdkAssert.Json($$"""{"orderId":"order-{{run.RunId}}","revenue":42.5,"currency":"EUR","products":[{"sku":"p-42","quantity":2}]}""", stored["properties"], "track properties");
        Assert.Equal("newsletter", (string?)stored["context"]!["campaign"]!["source"]);
        Assert.StartsWith("node-next-", (string?)stored["messageId"], StringComparison.Ordinal);
        AssertLibrary(stored);
    }

    [Fact]
    public void analytics_node_track_with_a_past_timestamp_is_stored_at_that_time()
    {
        var (_, stored) = run.Call("track", "Product Viewed");
        Assert.Equal($"anon-{run.RunId}", (string?)stored["anonymousId"]);
        Assert.Null(stored["userId"]);
        Assert.Equal(SdkAssert.Time("2026-01-15T10:00:00.000Z", "the past time"), SdkAssert.Time((string?)stored["originalTimestamp"], "originalTimestamp"));
        var timestamp = SdkAssert.Time((string?)stored["timestamp"], "timestamp");
        Assert.True((timestamp - SdkAssert.Time("2026-01-15T10:00:00.000Z", "the past time")).Duration() < TimeSpan.FromSeconds(5), $"timestamp {timestamp:O} lost the past time");
    }

    [Fact]
    public void analytics_node_page_and_screen_arrive_with_their_names_and_properties()
    {
        var (_, page) = run.Call("page", "Pricing");
        Assert.Equal("Docs", (string?)page["category"]);
        Assert.Equal(run.UserId, (string?)page["userId"]);
        Assert.Equal("https://example.com/pricing", (string?)page["properties"]!["url"]);

        var (_, screen) = run.Call("screen", "Home");
        Assert.Equal("dark", (string?)screen["properties"]!["variant"]);
        AssertLibrary(page);
        AssertLibrary(screen);
    }

    [Fact]
    public void analytics_node_group_and_alias_arrive_with_their_ids()
    {
        var (_, group) = run.Call("group");
        Assert.Equal($"acme-{run.RunId}", (string?)group["groupId"]);
        SdkAssert.Json("""{"name":"Acme Inc","employees":42}""", group["traits"], "group traits");

        var (_, alias) = run.Call("alias");
        Assert.Equal(run.UserId, (string?)alias["userId"]);
        Assert.Equal($"anon-{run.RunId}", (string?)alias["previousId"]);
        AssertLibrary(alias);
    }

    [Fact]
    public async Task analytics_node_events_are_found_by_the_events_api_filters()
    {
        Assert.Equal(run.SentMessageIds(m => (string?)m["userId"] == run.UserId), await run.QueryMessageIdsAsync($"userId={run.UserId}"));
        Assert.Equal(run.SentMessageIds(m => (string?)m["type"] == "track"), await run.QueryMessageIdsAsync("type=track"));
        Assert.Equal(run.SentMessageIds(m => (string?)m["event"] == "Order Completed"), await run.QueryMessageIdsAsync("event=Order%20Completed"));
        Assert.Equal(run.SentMessageIds(m => (string?)m["anonymousId"] == $"anon-{run.RunId}"), await run.QueryMessageIdsAsync($"anonymousId=anon-{run.RunId}"));
        Assert.Equal(6, (await run.QueryMessageIdsAsync($"userId={run.UserId}")).Count);
    }

    private void AssertLibrary(System.Text.Json.Nodes.JsonObject stored)
    {
        Assert.Equal("@segment/analytics-node", (string?)stored["context"]!["library"]!["name"]);
        Assert.Equal(run.Report.Library, (string?)stored["context"]!["library"]!["version"]);
    }
}
