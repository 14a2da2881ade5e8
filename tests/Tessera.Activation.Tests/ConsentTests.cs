using System.Text.Json.Nodes;

namespace Tessera.Activation.Tests;

/// <summary>A destination with a purpose sends only for profiles whose latest stated consent grants it (Segment's consent spec).</summary>
public sealed class ConsentTests
{
    private static string Consent(string userId, string preferences, string eventName = "Newsletter Signup") =>
        $$$"""{"userId":"{{{userId}}}","event":"{{{eventName}}}","context":{"consent":{"categoryPreferences":""" + preferences + "}}}";

    [Fact]
    public async Task without_consent_for_the_purpose_a_delivery_is_skipped_and_logged_with_the_reason()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, events: """["Newsletter Signup","Ping"]""", extra: ""","purpose":"Marketing" """));

        await server.SendAsync("track", Consent("yes", """{"Marketing":true,"Analytics":false}"""));
        await server.SendAsync("track", Consent("no", """{"marketing":false,"analytics":true}"""));
        await server.SendAsync("track", """{"userId":"never-said","event":"Newsletter Signup"}""");

        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).Count == 3, "three deliveries logged");
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 1, "the consented one to arrive");
        await Task.Delay(500);
        Assert.Equal([await server.ProfileIdAsync("user_id:yes")], receiver.Delivered().Select(d => d["profileId"]!.GetValue<string>()));

        var log = await server.DeliveriesAsync(destination);
        var skipped = log.Where(d => d["status"]!.GetValue<string>() == "skipped").ToList();
        Assert.Equal(2, skipped.Count);
        Assert.All(skipped, d =>
        {
            Assert.Equal("no consent for marketing", d["reason"]!.GetValue<string>());
            Assert.Equal(0, d["attempts"]!.GetValue<int>());
        });
        var no = await server.ProfileIdAsync("user_id:no");
        var onProfile = (await server.GetObjectAsync($"api/profiles/{no}/deliveries"))["items"]!.AsArray().Single()!.AsObject();
        Assert.Equal("skipped", onProfile["status"]!.GetValue<string>());

        var consent = (await server.GetObjectAsync($"api/profiles/{no}/consent"))["categories"]!.AsObject();
        Assert.False(consent["marketing"]!["granted"]!.GetValue<bool>());
        Assert.True(consent["analytics"]!["granted"]!.GetValue<bool>());
    }

    [Fact]
    public async Task the_latest_preference_counts_and_it_is_kept_for_later_messages_without_one()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        var buyers = await server.CreateSegmentAsync("Buyers", """{"event":"Order Completed"}""");
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, segments: $"[\"{buyers}\"]", extra: ""","purpose":"marketing" """));

        // Consent stated on a page view (any message type), withdrawn, then given again: each later event is judged by the latest.
        await server.SendAsync("page", """{"userId":"c","name":"Settings","context":{"consent":{"categoryPreferences":{"marketing":true}}}}""");
        await server.SendAsync("identify", """{"userId":"c","traits":{"x":1},"context":{"consent":{"categoryPreferences":{"marketing":false}}}}""");
        await server.SendAsync("track", """{"userId":"c","event":"Order Completed"}""");
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).Count == 1, "the entry's delivery logged");
        Assert.Equal("skipped", (await server.DeliveriesAsync(destination))[0]["status"]!.GetValue<string>());

        await server.SendAsync("track", Consent("d", """{"marketing":true}""", "Order Completed"));
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 1, "the entry of the consenting buyer, judged by the consent on the event that caused it");
        Assert.Equal(await server.ProfileIdAsync("user_id:d"), receiver.Delivered()[0]["profileId"]!.GetValue<string>());
        var history = (await server.GetObjectAsync($"api/profiles/{await server.ProfileIdAsync("user_id:c")}/consent"))["categories"]!["marketing"]!.AsObject();
        Assert.False(history["granted"]!.GetValue<bool>());
    }

    [Fact]
    public async Task a_destination_without_a_purpose_sends_regardless_of_consent()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        await server.CreateDestinationAsync(Activation.Webhook(receiver, events: """["Newsletter Signup"]"""));
        await server.SendAsync("track", Consent("no", """{"marketing":false}"""));
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 1, "the event to arrive");
        Assert.Equal(JsonValue.Create(false)!.ToJsonString(), receiver.Delivered()[0]["message"]!["context"]!["consent"]!["categoryPreferences"]!["marketing"]!.ToJsonString());
    }
}
