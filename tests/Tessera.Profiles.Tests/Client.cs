using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Profiles.Tests;

/// <summary>What a client does, in a line each: send a message, look a profile up.</summary>
internal static class Client
{
    public static async Task<JsonObject?> ProfileByAsync(this TestServer server, string identifier)
    {
        var response = await server.Admin.GetAsync($"api/profiles?identifier={Uri.EscapeDataString(identifier)}");
        if (response.StatusCode == HttpStatusCode.NotFound) { return null; }
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonObject>();
    }

    public static async Task<JsonObject> ProfileAsync(this TestServer server, string id) =>
        (await server.Admin.GetFromJsonAsync<JsonObject>($"api/profiles/{id}"))!;

    public static async Task<JsonArray> GetArrayAsync(this TestServer server, string path) =>
        (await server.Admin.GetFromJsonAsync<JsonArray>(path))!;

    public static string Id(this JsonObject profile) => profile["id"]!.GetValue<string>();

    public static HashSet<string> Identifiers(this JsonObject profile) =>
        profile["identifiers"]!.AsArray().Select(i => $"{i!["type"]}:{i["value"]}").ToHashSet();
}

internal static class HttpClientExtensions
{
    public static async Task<JsonObject> GetFromJsonAsyncObject(this HttpClient client, string path) =>
        (await client.GetFromJsonAsync<JsonObject>(path))!;
}
