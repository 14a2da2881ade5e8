using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Process.Tests;

internal static class Http
{
    public static HttpClient Collect(Uri baseAddress) => new()
    {
        BaseAddress = baseAddress,
        DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(TestServer.WriteKey + ":"))) },
    };

    public static HttpClient Admin(Uri baseAddress) => new()
    {
        BaseAddress = baseAddress,
        DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", TestServer.AdminToken) },
    };

    public static StringContent Batch(IEnumerable<string> messageIds) => new(
        "{\"batch\":[" + string.Join(",", messageIds.Select(id => $$"""{"type":"track","userId":"u-{{id}}","event":"Durable","messageId":"{{id}}","properties":{"n":1} }""")) + "]}",
        Encoding.UTF8,
        "application/json");

    /// <summary>Every messageId in the store, following cursors.</summary>
    public static async Task<HashSet<string>> StoredMessageIdsAsync(HttpClient admin)
    {
        var ids = new HashSet<string>();
        string? cursor = null;
        do
        {
            var page = (await admin.GetFromJsonAsync<JsonObject>($"api/events?limit=1000{(cursor is null ? "" : "&cursor=" + cursor)}"))!;
            foreach (var e in page["items"]!.AsArray()) { ids.Add(e!["messageId"]!.GetValue<string>()); }
            cursor = page["nextCursor"]?.GetValue<string>();
        }
        while (cursor is not null);
        return ids;
    }
}
