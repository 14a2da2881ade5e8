using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tessera.Collection.Tests;

/// <summary>Small helpers over the HTTP API, so tests read as what a client does.</summary>
internal static class Api
{
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static Task<HttpResponseMessage> PostJsonAsync(this HttpClient client, string path, string json) => client.PostAsync(path, Json(json));

    public static async Task<JsonObject> ReadObjectAsync(this HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonObject>())!;

    /// <summary>Every event the store holds matching <paramref name="query"/>, newest first, following cursors.</summary>
    public static async Task<List<JsonObject>> EventsAsync(this HttpClient admin, string query = "")
    {
        var all = new List<JsonObject>();
        string? cursor = null;
        do
        {
            var page = await admin.GetFromJsonAsync<JsonObject>($"api/events?limit=1000{(query.Length > 0 ? "&" + query : "")}{(cursor is null ? "" : "&cursor=" + cursor)}");
            all.AddRange(page!["items"]!.AsArray().Select(n => n!.AsObject()));
            cursor = page["nextCursor"]?.GetValue<string>();
        }
        while (cursor is not null);
        return all;
    }

    public static async Task<long> EventCountAsync(this HttpClient admin) =>
        (await admin.GetFromJsonAsync<JsonObject>("api/stats"))!["events"]!.GetValue<long>();

    public static string Batch(params string[] messages) => $$"""{"batch":[{{string.Join(",", messages)}}]}""";

    public static string Track(string messageId, string userId = "u-1", string eventName = "Order Completed") =>
        JsonSerializer.Serialize(new { type = "track", messageId, userId, @event = eventName, properties = new { revenue = 10 } });
}
