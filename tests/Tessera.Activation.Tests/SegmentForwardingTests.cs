using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Activation.Tests;

/// <summary>
/// A <c>segment</c> destination forwards events and audience changes in Segment's format to a second, real Tessera
/// server acting as the Segment-compatible endpoint, read back through its own <c>/api/events</c>.
/// </summary>
public sealed class SegmentForwardingTests
{
    [Fact]
    public async Task subscribed_events_arrive_at_another_tessera_with_their_message_ids_properties_and_timestamps()
    {
        await using var receiver = await TestServer.StartAsync();
        await using var server = await Activation.StartAsync();
        var destination = await server.CreateDestinationAsync(Forward(receiver, events: """["Order Completed"]"""));

        await server.SendAsync("track", """{"userId":"ann","event":"Order Completed","messageId":"order-1","timestamp":"2026-03-04T05:06:07.089Z","properties":{"revenue":120.5,"items":[{"sku":"p-1"}]},"context":{"ip":"10.0.0.1"}}""");
        await server.SendAsync("track", """{"anonymousId":"anon-7","event":"Order Completed","messageId":"order-2","properties":{"revenue":9}}""");
        await server.SendAsync("track", """{"userId":"ann","event":"Product Viewed","messageId":"not-subscribed"}""");

        await Activation.EventuallyAsync(async () => (await ReceivedAsync(receiver, "Order Completed")).Count == 2, "both orders at the receiver");
        var sent = await ReceivedAsync(server, "Order Completed");
        var received = await ReceivedAsync(receiver, "Order Completed");
        Assert.Equal(["order-1", "order-2"], received.Select(m => m["messageId"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        foreach (var original in sent)
        {
            var copy = received.Single(r => r["messageId"]!.GetValue<string>() == original["messageId"]!.GetValue<string>());
            Assert.Equal(original["timestamp"]!.GetValue<string>(), copy["timestamp"]!.GetValue<string>());
            Assert.Equal(original["properties"]!.ToJsonString(), copy["properties"]!.ToJsonString());
            Assert.Equal(original["userId"]?.GetValue<string>(), copy["userId"]?.GetValue<string>());
            Assert.Equal(original["anonymousId"]?.GetValue<string>(), copy["anonymousId"]?.GetValue<string>());
            Assert.Equal("track", copy["type"]!.GetValue<string>());
        }

        Assert.Equal("2026-03-04T05:06:07.089Z", received.Single(r => r["messageId"]!.GetValue<string>() == "order-1")["timestamp"]!.GetValue<string>());
        Assert.Equal("10.0.0.1", received.Single(r => r["messageId"]!.GetValue<string>() == "order-1")["context"]!["ip"]!.GetValue<string>());
        Assert.Empty(await ReceivedAsync(receiver, "Product Viewed"));
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination, "delivered")).Count == 2, "the log to say delivered");

        // The same payload sent again (as a retry after a lost answer would) is stored once: the receiver deduplicates on messageId.
        var payload = (await server.DeliveriesAsync(destination))[0]["payload"]!.ToJsonString();
        var resend = await receiver.Collect.PostAsync("v1/batch", Activation.Json(payload));
        Assert.Equal(HttpStatusCode.OK, resend.StatusCode);
        await Task.Delay(300);
        Assert.Equal(2, (await ReceivedAsync(receiver, "Order Completed")).Count);
    }

    [Fact]
    public async Task audience_changes_arrive_as_an_identify_with_the_audience_trait_and_audience_entered_and_exited_tracks()
    {
        await using var receiver = await TestServer.StartAsync();
        await using var server = await Activation.StartAsync();
        var segment = await server.CreateSegmentAsync("Pro Users!", """{"trait":"plan","op":"eq","value":"pro"}""");
        var destination = await server.CreateDestinationAsync(Forward(receiver, segments: $"[\"{segment}\"]"));

        await server.SendAsync("identify", """{"userId":"ann","traits":{"plan":"pro","email":"ann@example.com"}}""");
        await Activation.EventuallyAsync(async () => (await ReceivedAsync(receiver, "Audience Entered")).Count == 1, "the entry at the receiver");
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination, "delivered")).Count == 1, "the entry delivered");
        await server.SendAsync("identify", """{"userId":"ann","traits":{"plan":"free"}}""");
        await Activation.EventuallyAsync(async () => (await ReceivedAsync(receiver, "Audience Exited")).Count == 1, "the exit at the receiver");

        var entered = (await ReceivedAsync(receiver, "Audience Entered"))[0];
        Assert.Equal("ann", entered["userId"]!.GetValue<string>());
        Assert.Equal("pro_users", entered["properties"]!["audience_key"]!.GetValue<string>());
        Assert.True(entered["properties"]!["pro_users"]!.GetValue<bool>());
        Assert.Equal(segment, entered["context"]!["personas"]!["computation_id"]!.GetValue<string>());
        Assert.Equal("audience", entered["context"]!["personas"]!["computation_class"]!.GetValue<string>());
        var exited = (await ReceivedAsync(receiver, "Audience Exited"))[0];
        Assert.False(exited["properties"]!["pro_users"]!.GetValue<bool>());

        var identifies = (await receiver.GetObjectAsync("api/events?type=identify&limit=100"))["items"]!.AsArray().Select(i => i!.AsObject()).ToList();
        Assert.Equal(2, identifies.Count);
        Assert.Equal([false, true], identifies.Select(i => i["traits"]!["pro_users"]!.GetValue<bool>()));
        // The profile at the receiver has the audience as a trait, false since the exit; the identifiers came along as externalIds.
        await Activation.EventuallyAsync(async () => (await receiver.Admin.GetAsync("api/profiles?identifier=user_id:ann")).IsSuccessStatusCode, "ann's profile at the receiver");
        var profile = await receiver.GetObjectAsync("api/profiles?identifier=user_id:ann");
        Assert.False(profile["traits"]!["pro_users"]!.GetValue<bool>());
        Assert.Contains(profile["identifiers"]!.AsArray(), i => i!["type"]!.GetValue<string>() == "email" && i["value"]!.GetValue<string>() == "ann@example.com");
    }

    [Fact]
    public async Task a_receiver_that_is_down_then_back_gets_every_event_once()
    {
        var port = TesseraProcess.FreePort();
        var receiverData = TempDirectory.Create("segment-receiver");
        var receiver = await TestServer.StartAsync(receiverData, o => o.Urls = $"http://127.0.0.1:{port}");
        await using var server = await Activation.StartAsync(tune: o => o.MaxAttempts = 40);
        var destination = await server.CreateDestinationAsync(Forward(receiver, events: """["Renewed"]"""));
        await receiver.DisposeAsync();

        for (var i = 0; i < 5; i++) { await server.SendAsync("track", $$$"""{"userId":"r-{{{i}}}","event":"Renewed","messageId":"renewal-{{{i}}}"}"""); }
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).Count(d => d["attempts"]!.GetValue<int>() >= 2) == 5, "every delivery to have failed twice");
        Assert.All(await server.DeliveriesAsync(destination), d => Assert.Equal("pending", d["status"]!.GetValue<string>()));

        await using var back = await TestServer.StartAsync(receiverData, o => o.Urls = $"http://127.0.0.1:{port}");
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination, "delivered")).Count == 5, "all five delivered once the receiver is back");
        var received = await ReceivedAsync(back, "Renewed");
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"renewal-{i}"), received.Select(m => m["messageId"]!.GetValue<string>()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task requests_go_to_v1_batch_with_the_write_key_as_basic_auth_in_batches()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        var destination = await server.CreateDestinationAsync($$$"""
            {"type":"segment","url":"http://127.0.0.1:{{{receiver.Port}}}/","writeKey":"wk_live_123","events":["Ping"],"batching":{"maxSize":3,"maxWaitMs":300}}
            """);
        var batch = string.Join(",", Enumerable.Range(0, 7).Select(i => $$$"""{"type":"track","userId":"p-{{{i}}}","event":"Ping","messageId":"ping-{{{i}}}"}"""));
        await server.SendAsync("batch", $$$"""{"batch":[{{{batch}}}]}""");

        await Activation.EventuallyAsync(() => receiver.Requests.SelectMany(r => r.Json["batch"]!.AsArray()).Count() == 7, "seven messages");
        Assert.All(receiver.Requests, r =>
        {
            Assert.Equal("/v1/batch", r.Path);
            Assert.Equal("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("wk_live_123:")), r.Header("Authorization"));
            Assert.InRange(r.Json["batch"]!.AsArray().Count, 1, 3);
            Assert.All(r.Json["batch"]!.AsArray(), m => Assert.Null(m!["sentAt"]));
        });
        Assert.True(receiver.Requests.Count >= 3);
        Assert.Equal(7, receiver.Requests.SelectMany(r => r.Json["batch"]!.AsArray()).Select(m => m!["messageId"]!.GetValue<string>()).Distinct().Count());

        var read = await server.GetObjectAsync($"api/destinations/{destination}");
        Assert.DoesNotContain("wk_live_123", read.ToJsonString(), StringComparison.Ordinal);
        Assert.True(read["writeKeySet"]!.GetValue<bool>());
        Assert.Equal($"http://127.0.0.1:{receiver.Port}", read["url"]!.GetValue<string>());
        Assert.Equal(3, read["batching"]!["maxSize"]!.GetValue<int>());
    }

    [Fact]
    public async Task consent_and_frequency_caps_apply_to_forwarding()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        var destination = await server.CreateDestinationAsync($$$"""
            {"type":"segment","url":"http://127.0.0.1:{{{receiver.Port}}}","writeKey":"k","events":["Viewed"],"purpose":"analytics","frequencyCap":{"max":1,"per":"1d"}}
            """);
        await server.SendAsync("track", """{"userId":"yes","event":"Viewed","context":{"consent":{"categoryPreferences":{"analytics":true}}}}""");
        await server.SendAsync("track", """{"userId":"yes","event":"Viewed","messageId":"over-the-cap"}""");
        await server.SendAsync("track", """{"userId":"no","event":"Viewed","context":{"consent":{"categoryPreferences":{"analytics":false}}}}""");

        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).Count == 3, "three log rows");
        var log = await server.DeliveriesAsync(destination);
        Assert.Equal(2, log.Count(d => d["status"]!.GetValue<string>() == "skipped"));
        Assert.Contains(log, d => d["reason"]?.GetValue<string>() == "no consent for analytics");
        Assert.Contains(log, d => d["reason"]?.GetValue<string>() == "frequency cap: at most 1 per 1d");
        await Activation.EventuallyAsync(() => receiver.Requests.Count == 1, "the one consented delivery");
        await Task.Delay(300);
        Assert.Single(receiver.Requests);
        Assert.Equal("yes", receiver.Requests[0].Json["batch"]![0]!["userId"]!.GetValue<string>());
    }

    private static string Forward(TestServer receiver, string segments = "[]", string events = "[]") =>
        $$$"""{"type":"segment","url":"{{{receiver.BaseAddress}}}","writeKey":"{{{TestServer.WriteKey}}}","segments":{{{segments}}},"events":{{{events}}}}""";

    private static async Task<List<JsonObject>> ReceivedAsync(TestServer server, string eventName) =>
        [.. (await server.GetObjectAsync($"api/events?type=track&event={Uri.EscapeDataString(eventName)}&limit=100"))["items"]!.AsArray().Select(i => i!.AsObject())];
}
