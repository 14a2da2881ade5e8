using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Audiences.Tests;

/// <summary>What a marketer's client does against the API, a line each.</summary>
internal static class Segments
{
    /// <summary>Creates an audience and returns its id.</summary>
    public static async Task<string> CreateSegmentAsync(this TestServer server, string name, string definition)
    {
        var response = await server.Admin.PostAsync("api/segments", Json($$$"""{"name":{{{JsonValue.Create(name).ToJsonString()}}},"definition":{{{definition}}}}"""));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<string>();
    }

    public static async Task<JsonObject> GetObjectAsync(this TestServer server, string path)
    {
        var response = await server.Admin.GetAsync(path);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    public static async Task<string> ProfileIdAsync(this TestServer server, string identifier) =>
        (await server.GetObjectAsync($"api/profiles?identifier={Uri.EscapeDataString(identifier)}"))["id"]!.GetValue<string>();

    /// <summary>The audiences the profile owning <paramref name="identifier"/> is in now.</summary>
    public static async Task<List<string>> SegmentsOfAsync(this TestServer server, string identifier)
    {
        var profile = await server.GetObjectAsync($"api/profiles?identifier={Uri.EscapeDataString(identifier)}");
        return [.. profile["segments"]!.AsArray().Select(s => s!.GetValue<string>())];
    }

    /// <summary>The profile's entries and exits, oldest first, as "entered seg_x" / "exited seg_x".</summary>
    public static async Task<List<JsonObject>> HistoryOfAsync(this TestServer server, string identifier)
    {
        var id = await server.ProfileIdAsync(identifier);
        var answer = await server.GetObjectAsync($"api/profiles/{id}/segments");
        return [.. answer["history"]!.AsArray().Select(h => h!.AsObject())];
    }

    public static async Task<List<string>> MembersAsync(this TestServer server, string segmentId) =>
        [.. (await server.GetObjectAsync($"api/segments/{segmentId}/members"))["items"]!.AsArray().Select(i => i!.GetValue<string>())];

    /// <summary>Polls until <paramref name="condition"/> holds or the time is up (for changes that time itself causes).</summary>
    public static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) { return true; }
            await Task.Delay(100);
        }

        return await condition();
    }

    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static string Ago(TimeSpan age) => (DateTimeOffset.UtcNow - age).ToString("O");
}
