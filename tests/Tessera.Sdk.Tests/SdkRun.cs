using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Sdk.Tests;

/// <summary>
/// One SDK run against a fresh Tessera, shared by the tests of a class: the server starts, the driver script makes
/// its calls through the real SDK, and everything Tessera stored is read back through <c>GET /api/events</c>.
/// </summary>
public abstract class SdkRun : IAsyncLifetime
{
    private TestServer? _server;
    private SdkReport? _report;
    private IReadOnlyList<JsonObject>? _stored;

    /// <summary>Unique per run; the scripts build their user ids, order ids and group ids from it.</summary>
    public string RunId { get; } = Guid.NewGuid().ToString("N")[..12];

    public string UserId => $"user-{RunId}";

    public DateTimeOffset StartedAt { get; private set; }

    public DateTimeOffset FinishedAt { get; private set; }

    public TestServer Server => _server ?? throw new InvalidOperationException("the run has not started");

    public SdkReport Report => _report ?? throw new InvalidOperationException("the run has not started");

    /// <summary>Every event in the store, newest first, as <c>GET /api/events</c> answers them.</summary>
    public IReadOnlyList<JsonObject> Stored => _stored ?? throw new InvalidOperationException("the run has not started");

    protected abstract Task<SdkReport> RunSdkAsync(Uri tessera);

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        StartedAt = DateTimeOffset.UtcNow;
        _report = await RunSdkAsync(_server.BaseAddress);
        FinishedAt = DateTimeOffset.UtcNow;
        _stored = await ReadAllEventsAsync(_server.Admin);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null) { await _server.DisposeAsync(); }
    }

    /// <summary>The one stored event with this messageId; fails if it is missing or stored twice.</summary>
    public JsonObject StoredMessage(string messageId)
    {
        var matches = Stored.Where(e => (string?)e["messageId"] == messageId).ToList();
        Assert.True(matches.Count == 1, $"expected exactly one stored event with messageId {messageId}, found {matches.Count}. SDK report: {Report}");
        return matches[0];
    }

    /// <summary>The one message of this type (and event or name) the SDK sent, and what Tessera stored for it.</summary>
    public (JsonObject Sent, JsonObject Stored) Call(string type, string? eventOrName = null)
    {
        var sent = Report.Sent
            .Where(s => s.Type == type && (eventOrName is null || (string?)s.Message["event"] == eventOrName || (string?)s.Message["name"] == eventOrName))
            .ToList();
        Assert.True(sent.Count == 1, $"expected the SDK to send one {type} {eventOrName}, it sent {sent.Count}. SDK report: {Report}");
        return (sent[0].Message, StoredMessage(sent[0].MessageId));
    }

    /// <summary>The messageIds <c>GET /api/events?{query}</c> answers, for checking its filters on what an SDK sent.</summary>
    public async Task<IReadOnlyList<string>> QueryMessageIdsAsync(string query)
    {
        var page = await Server.Admin.GetFromJsonAsync<JsonObject>($"api/events?limit=1000&{query}")
            ?? throw new InvalidOperationException("GET /api/events answered nothing");
        return page["items"]!.AsArray().Select(i => (string)i!["messageId"]!).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The messageIds of the messages the SDK sent that match <paramref name="predicate"/>.</summary>
    public IReadOnlyList<string> SentMessageIds(Func<JsonObject, bool> predicate) =>
        Report.Sent.Where(s => predicate(s.Message)).Select(s => s.MessageId).Order(StringComparer.Ordinal).ToList();

    private static async Task<IReadOnlyList<JsonObject>> ReadAllEventsAsync(HttpClient admin)
    {
        var all = new List<JsonObject>();
        string? cursor = null;
        do
        {
            var page = await admin.GetFromJsonAsync<JsonObject>($"api/events?limit=1000{(cursor is null ? "" : "&cursor=" + cursor)}")
                ?? throw new InvalidOperationException("GET /api/events answered nothing");
            all.AddRange(page["items"]!.AsArray().Select(i => i!.AsObject()));
            cursor = (string?)page["nextCursor"];
        }
        while (cursor is not null);
        return all;
    }
}
