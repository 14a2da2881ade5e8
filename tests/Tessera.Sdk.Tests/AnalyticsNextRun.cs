using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Sdk.Tests;

/// <summary>
/// <c>@segment/analytics-next</c> in headless Chromium, on a page served from <c>http://localhost:PORT</c> while
/// Tessera listens on <c>http://127.0.0.1:OTHER</c>: every request to Tessera is cross-origin. The SDK is loaded
/// with <c>cdnURL</c> set to Tessera and nothing else; the settings it fetches from there tell it where to send.
/// </summary>
public abstract class AnalyticsNextRun(bool batching) : SdkRun
{
    /// <summary>The calls the page makes (browser/entry.js): track, alias, identify, track, page, screen, group.</summary>
    public const int Calls = 7;

    public bool Batching { get; } = batching;

    public string PageOrigin => (string)Report.Json["pageOrigin"]!;

    public string TesseraOrigin => Server.BaseAddress.GetLeftPart(UriPartial.Authority);

    /// <summary>The anonymousId the SDK made up in the page.</summary>
    public string AnonymousId => (string)Report.Json["page"]!["anonymousId"]!;

    /// <summary>Each call's resolved context as the page saw it: type, messageId and any delivery failure.</summary>
    public IReadOnlyList<JsonObject> PageEvents => Report.Json["page"]!["events"]!.AsArray().Select(e => e!.AsObject()).ToList();

    protected override Task<SdkReport> RunSdkAsync(Uri tessera) =>
        NodeScript.RunAsync(
            "browser-sdk.mjs",
            TimeSpan.FromSeconds(90),
            new Dictionary<string, string> { ["TESSERA_CHROMIUM"] = SdkEnvironment.Chromium },
            tessera.ToString(), TestServer.WriteKey, RunId, Batching ? "batching" : "standard");

    /// <summary>No request to Tessera failed in the browser (a CORS refusal shows here), and the page logged no error.</summary>
    public void AssertNoBrowserErrors()
    {
        Assert.True(Report.Json["error"] is null, $"the browser script failed: {Report.Json["error"]}");
        Assert.True(Report.Json["failed"]!.AsArray().Count == 0, $"requests to Tessera failed in the browser: {Report.Json["failed"]!.ToJsonString()}");
        Assert.True(Report.Json["console"]!.AsArray().Count == 0, $"the page logged errors: {Report.Json["console"]!.ToJsonString()}");
        Assert.All(PageEvents, e => Assert.True(e["failed"] is null, $"the SDK reports a failed delivery: {e.ToJsonString()}"));
    }

    /// <summary>Every POST the SDK made: text/plain, the write key in the body, and a CORS answer naming the page's origin.</summary>
    public void AssertCrossOriginTextPlainPosts()
    {
        Assert.NotEqual(TesseraOrigin, PageOrigin);
        var posts = Report.Requests.Where(r => (string?)r["method"] == "POST").ToList();
        Assert.NotEmpty(posts);
        foreach (var post in posts)
        {
            Assert.Equal("text/plain", (string?)post["headers"]!["content-type"]);
            Assert.Equal(TestServer.WriteKey, (string?)post["body"]!["writeKey"]);
            Assert.Equal(200, (int?)post["response"]!["status"]);
            Assert.Equal(PageOrigin, (string?)post["response"]!["allowOrigin"]);
        }
    }

    /// <summary>The messageIds the page got back from its calls are the ones that went out, in the same number.</summary>
    public void AssertPageCallsMatchSentMessages()
    {
        Assert.Equal(Calls, PageEvents.Count);
        Assert.Equal(
            PageEvents.Select(e => (string)e["messageId"]!).Order(StringComparer.Ordinal),
            Report.Sent.Select(s => s.MessageId).Order(StringComparer.Ordinal));
    }
}
