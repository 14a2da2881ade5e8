using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Collection.Tests;

/// <summary>Write keys per source, several sources per workspace, revocation, and the admin token on /api.</summary>
public sealed class SourcesAndAuthTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    [Fact]
    public async Task missing_write_key_gets_401_problem()
    {
        var response = await _server.Anonymous.PostJsonAsync("v1/track", """{"userId":"a","event":"E"}""");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        Assert.StartsWith("writeKey:", (await response.ReadObjectAsync())["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task unknown_write_key_gets_401()
    {
        using var client = ClientWithKey("not-a-real-key");

        var response = await client.PostJsonAsync("v1/track", """{"userId":"a","event":"E"}""");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task each_source_has_its_own_key_and_events_are_filed_under_it()
    {
        var web = await CreateSourceAsync("web", "shop");
        var app = await CreateSourceAsync("ios app", "shop");
        using var webClient = ClientWithKey(web["writeKey"]!.GetValue<string>());
        using var appClient = ClientWithKey(app["writeKey"]!.GetValue<string>());

        Assert.Equal(HttpStatusCode.OK, (await webClient.PostJsonAsync("v1/track", """{"userId":"multi-src","event":"From Web"}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await appClient.PostJsonAsync("v1/track", """{"userId":"multi-src","event":"From App"}""")).StatusCode);

        var fromWeb = Assert.Single(await _server.Admin.EventsAsync($"sourceId={web["id"]}"));
        var fromApp = Assert.Single(await _server.Admin.EventsAsync($"sourceId={app["id"]}"));
        Assert.Equal("From Web", fromWeb["event"]!.GetValue<string>());
        Assert.Equal("From App", fromApp["event"]!.GetValue<string>());
        Assert.Equal("shop", web["workspace"]!.GetValue<string>());
    }

    [Fact]
    public async Task revoked_key_gets_401_and_its_events_stay()
    {
        var source = await CreateSourceAsync("to revoke", "default");
        using var client = ClientWithKey(source["writeKey"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("v1/track", """{"userId":"revoked-1","event":"Before"}""")).StatusCode);

        var revoke = await _server.Admin.DeleteAsync($"api/sources/{source["id"]}");
        var after = await client.PostJsonAsync("v1/track", """{"userId":"revoked-1","event":"After"}""");

        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.NotNull((await revoke.ReadObjectAsync())["revokedAt"]);
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        Assert.Contains("revoked", (await after.ReadObjectAsync())["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("Before", Assert.Single(await _server.Admin.EventsAsync("userId=revoked-1"))["event"]!.GetValue<string>());
    }

    [Fact]
    public async Task creating_a_source_without_a_name_names_the_field()
    {
        var response = await _server.Admin.PostAsJsonAsync("api/sources", new { workspace = "x" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("name", (await response.ReadObjectAsync())["field"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("wrong-token")]
    public async Task management_api_needs_the_admin_token(string? token)
    {
        using var client = new HttpClient { BaseAddress = _server.BaseAddress };
        if (token is not null) { client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token); }

        foreach (var path in new[] { "api/events", "api/stats", "api/sources" })
        {
            var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        }
    }

    [Fact]
    public async Task the_write_key_does_not_open_the_management_api()
    {
        var response = await _server.Collect.GetAsync("api/events");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task health_answers_200_while_serving()
    {
        var response = await _server.Anonymous.GetAsync("health");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(_server.Store.Kind, (await response.ReadObjectAsync())["store"]!.GetValue<string>());
    }

    private async Task<JsonObject> CreateSourceAsync(string name, string workspace)
    {
        var response = await _server.Admin.PostAsJsonAsync("api/sources", new { name, workspace });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await response.ReadObjectAsync();
    }

    private HttpClient ClientWithKey(string writeKey)
    {
        var client = new HttpClient { BaseAddress = _server.BaseAddress };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(writeKey + ":")));
        return client;
    }
}
