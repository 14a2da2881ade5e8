using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Collection.Tests;

/// <summary>Reading back: filters, newest first, paging with a cursor, stats.</summary>
public sealed class EventsApiTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task events_are_listed_newest_first_across_pages_without_gaps_or_repeats()
    {
        for (var i = 0; i < 5; i++)
        {
            await _server.Collect.PostJsonAsync("v1/batch", Api.Batch(Enumerable.Range(0, 30).Select(j => Api.Track($"page-{i}-{j}", "pager")).ToArray()));
        }

        var seen = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = (await _server.Admin.GetFromJsonAsync<JsonObject>($"api/events?userId=pager&limit=40{(cursor is null ? "" : "&cursor=" + cursor)}"))!;
            seen.AddRange(page["items"]!.AsArray().Select(e => e!["messageId"]!.GetValue<string>()));
            cursor = page["nextCursor"]?.GetValue<string>();
            pages++;
        }
        while (cursor is not null);

        Assert.Equal(4, pages);
        var expected = Enumerable.Range(0, 5).SelectMany(i => Enumerable.Range(0, 30).Select(j => $"page-{i}-{j}")).Reverse().ToList();
        Assert.Equal(expected, seen);
    }

    [Fact]
    public async Task filters_by_type_event_user_and_anonymous_id()
    {
        await _server.Collect.PostJsonAsync("v1/batch", Api.Batch(
            """{"type":"track","userId":"f-user","event":"Signed Up"}""",
            """{"type":"track","userId":"f-user","event":"Order Completed"}""",
            """{"type":"identify","userId":"f-user","traits":{"a":1}}""",
            """{"type":"page","anonymousId":"f-anon","name":"Home"}"""));

        Assert.Equal(3, (await _server.Admin.EventsAsync("userId=f-user")).Count);
        Assert.Single(await _server.Admin.EventsAsync("userId=f-user&type=identify"));
        Assert.Equal("Order Completed", Assert.Single(await _server.Admin.EventsAsync("event=Order%20Completed"))["event"]!.GetValue<string>());
        Assert.Equal("page", Assert.Single(await _server.Admin.EventsAsync("anonymousId=f-anon"))["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task stats_count_events_and_sources()
    {
        await _server.Collect.PostJsonAsync("v1/batch", Api.Batch(Enumerable.Range(0, 7).Select(i => Api.Track($"stat-{i}")).ToArray()));

        var stats = (await _server.Admin.GetFromJsonAsync<JsonObject>("api/stats"))!;

        Assert.Equal(7, stats["events"]!.GetValue<long>());
        Assert.Equal(1, stats["sources"]!.GetValue<long>());
        foreach (var key in new[] { "profiles", "identifiers", "merges", "segments" }) { Assert.NotNull(stats[key]); }
    }
}
