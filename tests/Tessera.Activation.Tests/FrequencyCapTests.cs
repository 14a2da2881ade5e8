namespace Tessera.Activation.Tests;

/// <summary>A destination with a frequency cap is a trigger: "when X, send to Z, at most N per profile per period".</summary>
public sealed class FrequencyCapTests
{
    [Fact]
    public async Task deliveries_over_the_cap_are_skipped_per_profile_and_logged_with_the_reason()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, events: """["Cart Abandoned"]""", extra: ""","frequencyCap":{"max":2,"per":"1h"}"""));

        for (var i = 0; i < 4; i++) { await server.SendAsync("track", """{"userId":"often","event":"Cart Abandoned"}"""); }
        await server.SendAsync("track", """{"userId":"once","event":"Cart Abandoned"}""");

        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).Count == 5, "five deliveries logged");
        await Activation.EventuallyAsync(() => receiver.Delivered().Count == 3, "three sent");
        await Task.Delay(500);
        Assert.Equal(3, receiver.Requests.Count);
        var often = await server.ProfileIdAsync("user_id:often");
        Assert.Equal(2, receiver.Delivered().Count(d => d["profileId"]!.GetValue<string>() == often));
        var skipped = await server.DeliveriesAsync(destination, "skipped");
        Assert.Equal(2, skipped.Count);
        Assert.All(skipped, s =>
        {
            Assert.Equal(often, s["profileId"]!.GetValue<string>());
            Assert.Equal("frequency cap: at most 2 per 1h", s["reason"]!.GetValue<string>());
        });

        // The cap holds across derivation steps and restarts: it counts what the log holds.
        await server.SendAsync("track", """{"userId":"often","event":"Cart Abandoned"}""");
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination, "skipped")).Count == 3, "the fifth skipped too");
        Assert.Equal(2, (await server.GetObjectAsync($"api/destinations/{destination}"))["frequencyCap"]!["max"]!.GetValue<int>());
    }
}
