using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Tessera.Server.Activation;
using Tessera.Testing;

namespace Tessera.Activation.Tests;

/// <summary>What a marketer's client and a receiver's code do, a line each.</summary>
internal static class Activation
{
    public const string Secret = "a-webhook-secret-of-some-length";

    /// <summary>Retries that fit a test: 4 attempts, 0.2-1 s apart, looked for every 100 ms.</summary>
    public static void Fast(ActivationOptions o)
    {
        o.MaxAttempts = 4;
        o.FirstRetryDelay = TimeSpan.FromMilliseconds(200);
        o.MaxRetryDelay = TimeSpan.FromSeconds(1);
        o.QuickRetries = 0;
        o.RequestTimeout = TimeSpan.FromSeconds(5);
        o.PollInterval = TimeSpan.FromMilliseconds(100);
        o.ClaimLease = TimeSpan.FromSeconds(30);
    }

    public static Task<TestServer> StartAsync(string? dataDir = null, Action<ActivationOptions>? tune = null) =>
        TestServer.StartAsync(dataDir, o =>
        {
            Fast(o.Activation);
            tune?.Invoke(o.Activation);
        });

    public static async Task SendAsync(this TestServer server, string type, string json)
    {
        var response = await server.Collect.PostAsync($"v1/{type}", Json(json));
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
    }

    public static async Task<string> CreateSegmentAsync(this TestServer server, string name, string definition)
    {
        var response = await server.Admin.PostAsync("api/segments", Json($$$"""{"name":{{{JsonValue.Create(name).ToJsonString()}}},"definition":{{{definition}}}}"""));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
    }

    /// <summary>Creates a destination and returns its id.</summary>
    public static async Task<string> CreateDestinationAsync(this TestServer server, string json)
    {
        var response = await server.Admin.PostAsync("api/destinations", Json(json));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
    }

    public static async Task<JsonObject> GetObjectAsync(this TestServer server, string path)
    {
        var response = await server.Admin.GetAsync(path);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    public static async Task<List<JsonObject>> DeliveriesAsync(this TestServer server, string destinationId, string? status = null) =>
        [.. (await server.GetObjectAsync($"api/destinations/{destinationId}/deliveries{(status is null ? "" : "?status=" + status)}"))["items"]!.AsArray().Select(i => i!.AsObject())];

    public static async Task<string> ProfileIdAsync(this TestServer server, string identifier) =>
        (await server.GetObjectAsync($"api/profiles?identifier={Uri.EscapeDataString(identifier)}"))["id"]!.GetValue<string>();

    /// <summary>Polls until <paramref name="condition"/> holds; fails the test with <paramref name="what"/> when it never does.</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, double seconds = 20)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) { return; }
            await Task.Delay(50);
        }

        Assert.True(await condition(), $"timed out waiting for: {what}");
    }

    public static Task EventuallyAsync(Func<bool> condition, string what, double seconds = 20) => EventuallyAsync(() => Task.FromResult(condition()), what, seconds);

    /// <summary>What a receiver does: recompute the HMAC-SHA256 of the raw body with the shared secret and compare.</summary>
    public static bool SignatureIsValid(Receiver.Received request, string secret = Secret)
    {
        var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), request.Body));
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(request.Header("X-Tessera-Signature")));
    }

    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static string Webhook(Receiver receiver, string segments = "[]", string events = "[]", string extra = "") =>
        $$$"""{"type":"webhook","url":"{{{receiver.Url}}}","secret":"{{{Secret}}}","segments":{{{segments}}},"events":{{{events}}}{{{extra}}}}""";
}
