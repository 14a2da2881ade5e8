namespace Tessera.Sdk.Tests;

/// <summary>
/// <c>@segment/analytics-next</c> with <c>integrations: {'Segment.io': {deliveryStrategy: {strategy: 'batching'}}}</c>:
/// the calls are buffered and posted together to <c>/v1/b</c>.
/// </summary>
public sealed class AnalyticsNextBatchingTests(AnalyticsNextBatchingTests.Run run) : IClassFixture<AnalyticsNextBatchingTests.Run>
{
    public sealed class Run() : AnalyticsNextRun(batching: true);

    [Fact]
    public void analytics_next_batching_posts_the_calls_together_to_v1_b()
    {
        run.AssertNoBrowserErrors();
        run.AssertCrossOriginTextPlainPosts();
        run.AssertPageCallsMatchSentMessages();
        var posts = run.Report.Requests.Where(r => (string?)r["method"] == "POST").ToList();
        Assert.All(posts, p => Assert.Equal($"{run.TesseraOrigin}/v1/b", (string?)p["url"]));
        // The page sets the batch size to the number of calls: they leave in one request.
        Assert.Single(posts);
        Assert.Equal(AnalyticsNextRun.Calls, run.Report.Sent.Count);
    }

    [Fact]
    public void analytics_next_batching_messages_are_all_stored_exactly_as_sent() => SdkAssert.EveryMessageStoredAsSent(run, AnalyticsNextRun.Calls);

    [Fact]
    public void analytics_next_batching_messages_keep_segment_timestamps() => SdkAssert.EveryMessageHasSegmentTimestamps(run);

    [Fact]
    public void analytics_next_batching_track_arrives_with_properties_and_the_page_context()
    {
        var (_, stored) = run.Call("track", "Order Completed");
        Assert.Equal(run.UserId, (string?)stored["userId"]);
        Assert.Equal(run.AnonymousId, (string?)stored["anonymousId"]);
        SdkAssert.Json($$"""{"orderId":"order-{{run.RunId}}","revenue":42.5,"currency":"EUR","products":[{"sku":"p-42","quantity":2}]}""", stored["properties"], "track properties");
        Assert.Equal($"{run.PageOrigin}/", (string?)stored["context"]!["page"]!["url"]);
        Assert.Equal("analytics.js", (string?)stored["context"]!["library"]!["name"]);
    }
}
