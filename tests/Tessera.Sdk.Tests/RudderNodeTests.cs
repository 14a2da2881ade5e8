using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Sdk.Tests;

/// <summary>
/// <c>@rudderstack/rudder-sdk-node</c> with Tessera's URL as its <c>dataPlaneUrl</c>: identify, track, page, screen,
/// group, alias, flush. It gzips its batches and sends <c>originalTimestamp</c> and a <c>sentAt</c> per message.
/// </summary>
public sealed class RudderNodeTests(RudderNodeTests.Run run) : IClassFixture<RudderNodeTests.Run>
{
    public sealed class Run : SdkRun
    {
        protected override Task<SdkReport> RunSdkAsync(Uri tessera) =>
            NodeScript.RunAsync("rudder-node.mjs", TimeSpan.FromSeconds(60), null, tessera.ToString(), TestServer.WriteKey, RunId);
    }

    [Fact]
    public void rudder_node_sends_gzipped_batches_to_v1_batch_and_tessera_accepts_each()
    {
        SdkAssert.EveryRequestSucceeded(run);
        Assert.All(run.Report.Requests, r =>
        {
            Assert.Equal(new Uri(run.Server.BaseAddress, "v1/batch").ToString(), (string?)r["url"]);
            Assert.Equal("gzip", (string?)r["headers"]!["content-encoding"]);
        });
        // The first call flushes at once, then flushAt is 3: the seven calls go out in several batches.
        Assert.InRange(run.Report.Requests.Count, 2, 7);
    }

    [Fact]
    public void rudder_node_messages_are_all_stored_exactly_as_sent() => SdkAssert.EveryMessageStoredAsSent(run, expectedMessages: 7);

    [Fact]
    public void rudder_node_messages_keep_segment_timestamps() => SdkAssert.EveryMessageHasSegmentTimestamps(run);

    [Fact]
    public void rudder_node_identify_arrives_with_traits_in_the_message_and_in_its_context()
    {
        var (_, stored) = run.Call("identify");
        Assert.Equal(run.UserId, (string?)stored["userId"]);
        Assert.Equal($"anon-{run.RunId}", (string?)stored["anonymousId"]);
        var traits = $$"""{"email":"ada-{{run.RunId}}@example.com","name":"Ada Lovelace","plan":"pro","logins":3}""";
        SdkAssert.Json(traits, stored["traits"], "identify traits");
        SdkAssert.Json(traits, stored["context"]!["traits"], "identify context.traits");
        Assert.Equal("203.0.113.7", (string?)stored["context"]!["ip"]);
        AssertLibrary(stored);
    }

    [Fact]
    public void rudder_node_track_arrives_with_properties_and_context()
    {
        var (_, stored) = run.Call("track", "Order Completed");
        Assert.Equal(run.UserId, (string?)stored["userId"]);
        Assert.Equal("Order Completed", (string?)stored["event"]);
        SdkAssert.Json($$"""{"orderId":"order-{{run.RunId}}","revenue":42.5,"currency":"EUR","products":[{"sku":"p-42","quantity":2}]}""", stored["properties"], "track properties");
        Assert.Equal("newsletter", (string?)stored["context"]!["campaign"]!["source"]);
        Assert.Equal("server", (string?)stored["channel"]);
        AssertLibrary(stored);

        var (_, anonymous) = run.Call("track", "Product Viewed");
        Assert.Equal($"anon-{run.RunId}", (string?)anonymous["anonymousId"]);
        Assert.Null(anonymous["userId"]);
        SdkAssert.Json("""{"sku":"p-42"}""", anonymous["properties"], "anonymous track properties");
    }

    [Fact]
    public void rudder_node_page_and_screen_arrive_with_their_names_and_properties()
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
    public void rudder_node_group_and_alias_arrive_with_their_ids()
    {
        var (_, group) = run.Call("group");
        Assert.Equal($"acme-{run.RunId}", (string?)group["groupId"]);
        SdkAssert.Json("""{"name":"Acme Inc","employees":42}""", group["traits"], "group traits");

        var (_, alias) = run.Call("alias");
        Assert.Equal(run.UserId, (string?)alias["userId"]);
        Assert.Equal($"anon-{run.RunId}", (string?)alias["previousId"]);
        AssertLibrary(alias);
    }

    // RudderStack's Node SDK names itself analytics-node in context.library.
    private void AssertLibrary(JsonObject stored)
    {
        Assert.Equal("analytics-node", (string?)stored["context"]!["library"]!["name"]);
        Assert.Equal(run.Report.Library, (string?)stored["context"]!["library"]!["version"]);
    }
}
