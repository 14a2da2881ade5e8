using System.Net;
using System.Net.Http.Json;
using Tessera.Testing;

namespace Tessera.Collection.Tests;

/// <summary>A messageId resent by the same source within the window is stored once, also across a restart.</summary>
public sealed class DedupTests
{
    [Fact]
    public async Task duplicate_messageId_from_the_same_source_is_stored_once()
    {
        await using var server = await TestServer.StartAsync();

        var first = await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("dup-1"), Api.Track("dup-2")));
        var again = await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("dup-1"), Api.Track("dup-3"), Api.Track("dup-3")));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(["dup-3", "dup-2", "dup-1"], (await server.Admin.EventsAsync()).Select(e => e["messageId"]!.GetValue<string>()));
    }

    [Fact]
    public async Task concurrent_requests_with_the_same_messageId_store_it_once()
    {
        await using var server = await TestServer.StartAsync();

        var sends = Enumerable.Range(0, 20).Select(_ => server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("race-1"), Api.Track("race-2"))));
        var responses = await Task.WhenAll(sends);

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(2, await server.Admin.EventCountAsync());
    }

    [Fact]
    public async Task same_messageId_from_different_sources_is_kept_for_each()
    {
        await using var server = await TestServer.StartAsync();
        var other = await (await server.Admin.PostAsJsonAsync("api/sources", new { name = "other" })).ReadObjectAsync();

        await server.Collect.PostJsonAsync("v1/track", """{"userId":"u","event":"E","messageId":"shared-id"}""");
        await server.Anonymous.PostJsonAsync("v1/track", $$"""{"writeKey":"{{other["writeKey"]}}","userId":"u","event":"E","messageId":"shared-id"}""");

        Assert.Equal(2, await server.Admin.EventCountAsync());
    }

    [Fact]
    public async Task duplicate_is_recognised_after_a_restart()
    {
        var dataDir = TempDirectory.Create("dedup-restart");
        await using (var server = await TestServer.StartAsync(dataDir))
        {
            await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("restart-1"), Api.Track("restart-2")));
        }

        await using (var restarted = await TestServer.StartAsync(dataDir))
        {
            await restarted.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("restart-1"), Api.Track("restart-3")));

            Assert.Equal(["restart-3", "restart-2", "restart-1"], (await restarted.Admin.EventsAsync()).Select(e => e["messageId"]!.GetValue<string>()));
        }
    }

    [Fact]
    public async Task outside_the_configured_window_a_resent_messageId_is_stored_again()
    {
        // Long enough that the first two are received within it even on a loaded machine (they are compared by receipt time).
        await using var server = await TestServer.StartAsync(configure: o => o.DedupWindow = TimeSpan.FromSeconds(2));

        await server.Collect.PostJsonAsync("v1/track", """{"userId":"u","event":"E","messageId":"window-1"}""");
        await server.Collect.PostJsonAsync("v1/track", """{"userId":"u","event":"E","messageId":"window-1"}""");
        await Task.Delay(2_500);
        await server.Collect.PostJsonAsync("v1/track", """{"userId":"u","event":"E","messageId":"window-1"}""");

        Assert.Equal(2, await server.Admin.EventCountAsync());
    }
}
