using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Activation.Tests;

/// <summary>Audience changes and events reach a real receiver on loopback, signed, once per cause, whatever the receiver does.</summary>
public sealed class WebhookDeliveryTests
{
    [Fact]
    public async Task entering_and_leaving_an_audience_are_posted_signed_with_the_contract_fields()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        var pro = await server.CreateSegmentAsync("Pro", """{"trait":"plan","op":"eq","value":"pro"}""");
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, segments: $"[\"{pro}\"]", extra: ""","headers":{"X-Api-Key":"k-123"}"""));

        await server.SendAsync("identify", """{"userId":"ann","traits":{"plan":"pro","email":"ann@example.com"}}""");
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 1, "the entry to arrive");
        await server.SendAsync("identify", """{"userId":"ann","traits":{"plan":"free"}}""");
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 2, "the exit to arrive");

        var profile = await server.ProfileIdAsync("user_id:ann");
        var (entered, exited) = (receiver.Requests[0], receiver.Requests[1]);
        foreach (var request in receiver.Requests)
        {
            Assert.True(Activation.SignatureIsValid(request), $"signature {request.Header("X-Tessera-Signature")} does not match the body");
            Assert.False(Activation.SignatureIsValid(request, "another-secret-entirely"));
            Assert.StartsWith("application/json", request.Header("Content-Type"), StringComparison.Ordinal);
            Assert.Equal("k-123", request.Header("X-Api-Key"));
            Assert.Equal(request.Json["idempotencyKey"]!.GetValue<string>(), request.Header("Idempotency-Key"));
            Assert.Equal(profile, request.Json["profileId"]!.GetValue<string>());
            Assert.Equal(pro, request.Json["segmentId"]!.GetValue<string>());
            Assert.Equal("Pro", request.Json["segment"]!["name"]!.GetValue<string>());
            Assert.True(DateTimeOffset.UtcNow - request.Json["at"]!.GetValue<DateTimeOffset>() < TimeSpan.FromMinutes(1));
        }

        Assert.Equal("audience_entered", entered.Json["type"]!.GetValue<string>());
        Assert.Equal("ann@example.com", entered.Json["traits"]!["email"]!.GetValue<string>());
        Assert.Equal("ann", entered.Json["identifiers"]!["user_id"]!.GetValue<string>());
        Assert.Equal("ann@example.com", entered.Json["identifiers"]!["email"]!.GetValue<string>());
        Assert.Equal("audience_exited", exited.Json["type"]!.GetValue<string>());
        Assert.NotEqual(entered.Json["idempotencyKey"]!.GetValue<string>(), exited.Json["idempotencyKey"]!.GetValue<string>());

        // An entry can reach the receiver before its commit (an immediate send); the log records it once derived.
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)) is { Count: 2 } log && log.All(d => d["status"]!.GetValue<string>() == "delivered"),
            "the log to say delivered");
        var log = await server.DeliveriesAsync(destination);
        Assert.Equal(["audience_exited", "audience_entered"], log.Select(d => d["type"]!.GetValue<string>()));
        Assert.All(log, d => Assert.Equal(1, d["attempts"]!.GetValue<int>()));
        Assert.All(log, d => Assert.NotNull(d["deliveredAt"]));
    }

    [Fact]
    public async Task an_entry_reaches_the_webhook_while_its_commit_is_still_held_and_is_sent_once()
    {
        // Each commit of the embedded store held 3 s, as a DuckDB checkpoint holds one: the send must not wait for it.
        var held = TimeSpan.FromSeconds(3);
        await using var receiver = await Receiver.StartAsync();
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            Activation.Fast(o.Activation);
            o.CommitDelay = held;
        });
        var pro = await server.CreateSegmentAsync("Pro", """{"trait":"plan","op":"eq","value":"pro"}""");
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, segments: $"[\"{pro}\"]"));

        var sent = System.Diagnostics.Stopwatch.StartNew();
        await server.SendAsync("identify", """{"userId":"early","traits":{"plan":"pro"}}""");
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 1, "the entry to arrive");
        var arrived = sent.Elapsed;
        if (server.Options.Store == "duckdb")
        {
            Assert.True(arrived < held, $"the entry arrived after {arrived.TotalMilliseconds:F0} ms: it waited for the held commit");
        }

        // The durable path catches up and records that send as the delivery, without sending again.
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).Any(d => d["status"]!.GetValue<string>() == "delivered"), "the log to say delivered");
        var logged = Assert.Single(await server.DeliveriesAsync(destination));
        Assert.Equal(1, logged["attempts"]!.GetValue<int>());
        var request = Assert.Single(receiver.Requests);
        Assert.Equal(logged["idempotencyKey"]!.GetValue<string>(), request.Header("Idempotency-Key"));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(logged["payload"]!.ToJsonString()), request.Json), "the logged payload is the one that was sent");
        await Task.Delay(500);
        Assert.Single(receiver.Requests);
    }

    [Fact]
    public async Task subscribed_events_are_posted_by_name_and_by_filter_and_others_are_not()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        var byName = await server.CreateDestinationAsync(Activation.Webhook(receiver, events: """["Order Completed"]"""));
        await using var bigOrders = await Receiver.StartAsync();
        var byFilter = await server.CreateDestinationAsync($$$"""
            {"type":"webhook","url":"{{{bigOrders.Url}}}","secret":"{{{Activation.Secret}}}","where":[{"property":"revenue","op":"gte","value":100}]}
            """);

        await server.SendAsync("track", """{"userId":"bo","event":"Product Viewed","properties":{"revenue":500}}""");
        await server.SendAsync("track", """{"userId":"bo","event":"Order Completed","messageId":"small-order","properties":{"revenue":20}}""");
        await server.SendAsync("track", """{"userId":"bo","event":"Order Completed","messageId":"big-order","properties":{"revenue":250}}""");
        await server.SendAsync("page", """{"userId":"bo","name":"Home","properties":{"revenue":999}}""");

        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 2 && bigOrders.Delivered().Count == 2, "the orders and the big events to arrive");
        await Task.Delay(500);
        // Requests to one destination run concurrently: the order of arrival is not the order of the log.
        Assert.Equal(["big-order", "small-order"], receiver.Delivered().Select(d => d["message"]!["messageId"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.All(receiver.Delivered(), d =>
        {
            Assert.Equal("event", d["type"]!.GetValue<string>());
            Assert.Equal("Order Completed", d["event"]!.GetValue<string>());
            Assert.Equal(d["profileId"]!.GetValue<string>(), d["message"]!["profileId"]!.GetValue<string>());
        });
        Assert.Equal(["Order Completed", "Product Viewed"], bigOrders.Delivered().Select(d => d["event"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.Equal(2, (await server.DeliveriesAsync(byName)).Count);
        Assert.Equal(2, (await server.DeliveriesAsync(byFilter)).Count);
    }

    [Fact]
    public async Task a_receiver_failing_for_a_while_gets_the_delivery_later_with_the_same_idempotency_key()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.FailNext(2);
        await using var server = await Activation.StartAsync();
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, events: """["Signed Up"]"""));

        await server.SendAsync("track", """{"userId":"flaky","event":"Signed Up"}""");
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 1, "the third attempt to succeed");

        Assert.Equal([500, 500, 200], receiver.Requests.Select(r => r.AnsweredWith));
        Assert.Single(receiver.Requests.Select(r => r.Header("Idempotency-Key")).Distinct());
        Assert.Single(receiver.Requests.Select(r => r.Json["idempotencyKey"]!.GetValue<string>()).Distinct());
        Assert.Single(receiver.Requests.Select(r => r.Text).Distinct());
        Assert.True(receiver.Requests[2].At - receiver.Requests[0].At >= TimeSpan.FromMilliseconds(150), "retries wait (backoff)");
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination))[0]["status"]!.GetValue<string>() == "delivered", "the log to say delivered");
        var log = Assert.Single(await server.DeliveriesAsync(destination));
        Assert.Equal(3, log["attempts"]!.GetValue<int>());
        Assert.Contains("HTTP 500", log["lastError"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task a_receiver_that_is_down_then_up_again_gets_everything()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync(tune: o => o.MaxAttempts = 30);
        var segment = await server.CreateSegmentAsync("Buyers", """{"event":"Order Completed"}""");
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, segments: $"[\"{segment}\"]"));
        await receiver.DownAsync();

        for (var i = 0; i < 5; i++) { await server.SendAsync("track", $$$"""{"userId":"buyer-{{{i}}}","event":"Order Completed"}"""); }
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).Count(d => d["attempts"]!.GetValue<int>() >= 2) == 5, "every delivery to have failed twice");
        var failed = await server.DeliveriesAsync(destination);
        Assert.All(failed, d => Assert.Equal("pending", d["status"]!.GetValue<string>()));
        Assert.All(failed, d => Assert.False(string.IsNullOrEmpty(d["lastError"]?.GetValue<string>())));

        await receiver.UpAsync();
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 5, "the five entries to arrive once the receiver is back");
        Assert.Equal(5, receiver.Delivered().Select(d => d["profileId"]!.GetValue<string>()).Distinct().Count());
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).All(d => d["status"]!.GetValue<string>() == "delivered"), "the log to say delivered");
    }

    [Fact]
    public async Task after_the_last_retry_a_delivery_is_a_dead_letter_and_a_replay_delivers_it()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.FailNext(1_000);
        await using var server = await Activation.StartAsync();
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, events: """["Trial Started","Trial Ended"]"""));
        await server.SendAsync("track", """{"userId":"dead","event":"Trial Started"}""");
        await server.SendAsync("track", """{"userId":"dead","event":"Trial Ended"}""");

        await Activation.EventuallyAsync(async () => (await server.GetObjectAsync($"api/destinations/{destination}/dead-letters"))["items"]!.AsArray().Count == 2, "both to be dead letters");
        var dead = (await server.GetObjectAsync($"api/destinations/{destination}/dead-letters"))["items"]!.AsArray().Select(d => d!.AsObject()).ToList();
        Assert.All(dead, d =>
        {
            Assert.Equal("dead", d["status"]!.GetValue<string>());
            Assert.Equal(4, d["attempts"]!.GetValue<int>());
            Assert.Contains("no more retries", d["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        });
        Assert.Equal(8, receiver.Requests.Count);
        await Task.Delay(1500);
        Assert.Equal(8, receiver.Requests.Count);

        receiver.FailNext(0);
        var first = dead.Single(d => d["payload"]!["event"]!.GetValue<string>() == "Trial Started")["id"]!.GetValue<long>();
        var replay = await server.Admin.PostAsync($"api/destinations/{destination}/dead-letters/replay", Activation.Json($$$"""{"ids":[{{{first}}}]}"""));
        Assert.True(replay.IsSuccessStatusCode, await replay.Content.ReadAsStringAsync());
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 1, "the replayed one to arrive");
        Assert.Equal("Trial Started", receiver.Delivered()[0]["event"]!.GetValue<string>());
        await Task.Delay(500);
        Assert.Single(receiver.Delivered());

        // The rest, with an empty body: every dead letter of the destination.
        var all = await server.Admin.PostAsync($"api/destinations/{destination}/dead-letters/replay", null);
        Assert.Equal(1, (await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<JsonObject>(all.Content))!["count"]!.GetValue<int>());
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 2, "the other to arrive");
        await Activation.EventuallyAsync(async () => (await server.GetObjectAsync($"api/destinations/{destination}/dead-letters"))["items"]!.AsArray().Count == 0, "no dead letters left");
        Assert.Equal(2, receiver.Requests.Where(r => r.AnsweredWith == 200).Select(r => r.Header("Idempotency-Key")).Distinct().Count());
        Assert.Equal(dead.Select(d => d["idempotencyKey"]!.GetValue<string>()).Order(), receiver.Delivered().Select(d => d["idempotencyKey"]!.GetValue<string>()).Order());
    }

    [Fact]
    public async Task a_refusal_with_a_4xx_is_not_retried_and_goes_straight_to_the_dead_letters()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.FailStatus = 422;
        receiver.FailNext(1_000);
        await using var server = await Activation.StartAsync();
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, events: """["Bad Thing"]"""));
        await server.SendAsync("track", """{"userId":"x","event":"Bad Thing"}""");
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination, "dead")).Count == 1, "the dead letter");
        var dead = (await server.DeliveriesAsync(destination, "dead"))[0];
        Assert.Equal(1, dead["attempts"]!.GetValue<int>());
        Assert.Contains("HTTP 422", dead["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Single(receiver.Requests);
    }

    [Fact]
    public async Task with_batching_on_bodies_are_batches_of_at_most_the_size_each_item_keyed_and_the_whole_signed()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        var segment = await server.CreateSegmentAsync("Batch me", """{"trait":"group","op":"eq","value":"b"}""");
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, segments: $"[\"{segment}\"]", extra: ""","batching":{"enabled":true,"maxSize":4,"maxWaitMs":300}"""));

        var batch = string.Join(",", Enumerable.Range(0, 10).Select(i => $$$"""{"type":"identify","userId":"b-{{{i}}}","traits":{"group":"b"}}"""));
        await server.SendAsync("batch", $$$"""{"batch":[{{{batch}}}]}""");
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 10, "ten entries in batches");

        Assert.All(receiver.Requests, r =>
        {
            Assert.True(Activation.SignatureIsValid(r));
            Assert.NotNull(r.Json["batch"]);
            Assert.InRange(r.Items.Count, 1, 4);
        });
        Assert.True(receiver.Requests.Count >= 3);
        Assert.Equal(10, receiver.Delivered().Select(d => d["idempotencyKey"]!.GetValue<string>()).Distinct().Count());
        Assert.All(receiver.Delivered(), d => Assert.Equal("audience_entered", d["type"]!.GetValue<string>()));
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).Count(d => d["status"]!.GetValue<string>() == "delivered") == 10, "the log to say delivered");

        // A lone change still leaves after the wait, in a batch of one.
        await server.SendAsync("identify", """{"userId":"late","traits":{"group":"b"}}""");
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 11, "the lone entry");
        Assert.Single(receiver.Requests[^1].Items);
    }

    [Fact]
    public async Task a_restart_in_the_middle_of_retries_loses_nothing_and_keeps_the_key()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.FailNext(1_000);
        var dataDir = TempDirectory.Create("tessera-activation");
        string destination;
        string key;
        await using (var first = await Activation.StartAsync(dataDir, o => o.MaxAttempts = 50))
        {
            destination = await first.CreateDestinationAsync(Activation.Webhook(receiver, events: """["Renewed"]"""));
            await first.SendAsync("track", """{"userId":"renewer","event":"Renewed"}""");
            await Activation.EventuallyAsync(() => receiver.Requests.Count >= 2, "two failed attempts");
            key = receiver.Requests[0].Header("Idempotency-Key");
        }

        receiver.FailNext(0);
        var before = receiver.Requests.Count;
        await using var second = await Activation.StartAsync(dataDir, o => o.MaxAttempts = 50);
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 1, "the delivery after the restart");
        Assert.True(receiver.Requests.Count > before);
        Assert.All(receiver.Requests, r => Assert.Equal(key, r.Header("Idempotency-Key")));
        await Activation.EventuallyAsync(async () => (await second.DeliveriesAsync(destination))[0]["status"]!.GetValue<string>() == "delivered", "the log to say delivered");
        var log = Assert.Single(await second.DeliveriesAsync(destination));
        Assert.True(log["attempts"]!.GetValue<int>() >= 3);
    }

    [Fact]
    public async Task an_event_committed_while_tessera_is_down_for_activation_is_delivered_at_the_next_start()
    {
        // Activation off: the event is stored but not derived (as if the process died right after the commit).
        await using var receiver = await Receiver.StartAsync();
        var dataDir = TempDirectory.Create("tessera-activation");
        string destination;
        await using (var first = await Activation.StartAsync(dataDir))
        {
            destination = await first.CreateDestinationAsync(Activation.Webhook(receiver, events: """["Checked Out"]"""));
        }

        await using (var paused = await Activation.StartAsync(dataDir, o => o.Enabled = false))
        {
            await paused.SendAsync("track", """{"userId":"later","event":"Checked Out"}""");
            await Task.Delay(700);
            Assert.Empty(receiver.Requests);
            Assert.Empty(await paused.DeliveriesAsync(destination));
        }

        await using var second = await Activation.StartAsync(dataDir);
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 1, "the delivery derived at start");
        Assert.Equal("Checked Out", receiver.Delivered()[0]["event"]!.GetValue<string>());
        await Task.Delay(500);
        Assert.Single(receiver.Requests);
    }

    [Fact]
    public async Task a_profiles_deliveries_are_listed_on_the_profile()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, events: """["Ping"]"""));
        await server.SendAsync("track", """{"userId":"p1","event":"Ping"}""");
        await server.SendAsync("track", """{"userId":"p2","event":"Ping"}""");
        await server.SendAsync("track", """{"userId":"p1","event":"Ping"}""");
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 3, "three pings");
        var p1 = await server.ProfileIdAsync("user_id:p1");
        var items = (await server.GetObjectAsync($"api/profiles/{p1}/deliveries"))["items"]!.AsArray().Select(i => i!.AsObject()).ToList();
        Assert.Equal(2, items.Count);
        Assert.All(items, i =>
        {
            Assert.Equal(p1, i["profileId"]!.GetValue<string>());
            Assert.Equal(destination, i["destinationId"]!.GetValue<string>());
        });
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await server.Admin.GetAsync("api/profiles/prof_nope/deliveries")).StatusCode);
    }
}
