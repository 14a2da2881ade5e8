using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Tessera.Activation.Tests;
using Tessera.Testing;

namespace Tessera.Journeys.Tests;

/// <summary>
/// A server whose clock is a <see cref="FakeTimeProvider"/> the test moves: receive times, audience windows, the
/// outbox and journey waits all read it, so "an hour later" is an hour of the server's time, not a shortened wait.
/// </summary>
internal static class Journeys
{
    public static FakeTimeProvider NewClock() => new(DateTimeOffset.UtcNow);

    public static Task<TestServer> StartAsync(FakeTimeProvider clock, string? dataDir = null, Action<Server.Hosting.TesseraOptions>? configure = null) =>
        TestServer.StartAsync(dataDir, o =>
        {
            Activation.Tests.Activation.Fast(o.Activation);
            o.Journeys.PollInterval = TimeSpan.FromMilliseconds(50);
            o.Journeys.DeriveInterval = TimeSpan.FromMilliseconds(200);
            configure?.Invoke(o);
        }, clock: clock);

    /// <summary>Creates a journey (active unless the JSON says otherwise) and returns its id.</summary>
    public static async Task<string> CreateJourneyAsync(this TestServer server, string json)
    {
        var body = JsonNode.Parse(json)!.AsObject();
        body["status"] ??= "active";
        var response = await server.Admin.PostAsync("api/journeys", Activation.Tests.Activation.Json(body.ToJsonString()));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
    }

    /// <summary>The journey's runs (newest first) and counts.</summary>
    public static Task<JsonObject> PositionsAsync(this TestServer server, string journeyId, string query = "") =>
        server.GetObjectAsync($"api/journeys/{journeyId}/positions{query}");

    public static async Task<List<JsonObject>> RunsAsync(this TestServer server, string journeyId) =>
        [.. (await server.PositionsAsync(journeyId))["items"]!.AsArray().Select(i => i!.AsObject())];

    /// <summary>Waits until the profile's run of the journey is at <paramref name="step"/> in <paramref name="state"/>.</summary>
    public static Task RunReachesAsync(this TestServer server, string journeyId, string userId, string step, string state = "active", int run = 1) =>
        Activation.Tests.Activation.EventuallyAsync(async () =>
        {
            var profile = await ProfileOrNullAsync(server, userId);
            return profile is not null && (await server.RunsAsync(journeyId)).Any(r =>
                r["profileId"]!.GetValue<string>() == profile && r["run"]!.GetValue<int>() == run && r["step"]!.GetValue<string>() == step && r["state"]!.GetValue<string>() == state);
        }, $"{userId}'s run {run} of {journeyId} to be {state} at {step}");

    public static async Task<string?> ProfileOrNullAsync(TestServer server, string userId)
    {
        var response = await server.Admin.GetAsync($"api/profiles?identifier={Uri.EscapeDataString("user_id:" + userId)}");
        return response.StatusCode == HttpStatusCode.OK ? (await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>() : null;
    }

    /// <summary>Moves the server's clock and gives its loops a moment to notice (they poll every 50 ms).</summary>
    public static async Task AdvanceAsync(this FakeTimeProvider clock, TimeSpan by)
    {
        clock.Advance(by);
        await Task.Delay(300);
    }

    /// <summary>A webhook destination that subscribes to nothing: only journeys send to it.</summary>
    public static Task<string> JourneyWebhookAsync(this TestServer server, Receiver receiver) =>
        server.CreateDestinationAsync($$$"""{"type":"webhook","url":"{{{receiver.Url}}}","secret":"{{{Activation.Tests.Activation.Secret}}}"}""");

    /// <summary>The journey sends the receiver accepted.</summary>
    public static List<JsonObject> JourneySends(this Receiver receiver) => [.. receiver.Delivered().Where(d => d["type"]!.GetValue<string>() == "journey_step")];

    /// <summary>Asserts a 400 problem naming <paramref name="field"/>.</summary>
    public static async Task RefusedAsync(this TestServer server, string json, string field, string? says = null)
    {
        var response = await server.Admin.PostAsync("api/journeys", Activation.Tests.Activation.Json(json));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"expected 400 for {field}: {(int)response.StatusCode} {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(text)!.AsObject();
        Assert.True(problem["field"]!.GetValue<string>() == field, $"expected field {field}: {text}");
        if (says is not null) { Assert.Contains(says, problem["detail"]!.GetValue<string>(), StringComparison.Ordinal); }
    }
}
