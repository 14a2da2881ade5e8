using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Collection.Tests;

/// <summary>Bad input gets a clear problem+json that names the field; good data in the same request is kept.</summary>
public sealed class ValidationTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    [Theory]
    [InlineData("track", """{"event":"No Ids"}""", "userId")]
    [InlineData("track", """{"userId":"v-1"}""", "event")]
    [InlineData("track", """{"userId":"v-1","event":""}""", "event")]
    [InlineData("track", """{"userId":"v-1","event":42}""", "event")]
    [InlineData("track", """{"userId":{"id":1},"event":"E"}""", "userId")]
    [InlineData("track", """{"userId":"v-1","event":"E","properties":[1,2]}""", "properties")]
    [InlineData("identify", """{"userId":"v-1","traits":"gold"}""", "traits")]
    [InlineData("identify", """{"userId":"v-1","context":5}""", "context")]
    [InlineData("track", """{"userId":"v-1","event":"E","timestamp":"yesterday"}""", "timestamp")]
    [InlineData("track", """{"userId":"v-1","event":"E","sentAt":12345}""", "sentAt")]
    [InlineData("group", """{"userId":"v-1"}""", "groupId")]
    [InlineData("alias", """{"userId":"v-1"}""", "previousId")]
    [InlineData("alias", """{"previousId":"a-1","anonymousId":"x"}""", "userId")]
    [InlineData("track", """[1,2,3]""", "")]
    public async Task invalid_message_gets_400_problem_naming_the_field(string type, string body, string field)
    {
        var response = await _server.Collect.PostJsonAsync($"v1/{type}", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        var problem = await response.ReadObjectAsync();
        Assert.Equal(field, problem["field"]!.GetValue<string>());
        Assert.StartsWith(field.Length == 0 ? "a message must be a JSON object" : field + ":", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task malformed_json_gets_400_naming_the_body_and_position()
    {
        var response = await _server.Collect.PostJsonAsync("v1/track", """{"userId":"v-2","event":""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.ReadObjectAsync();
        Assert.Equal("body", problem["field"]!.GetValue<string>());
        Assert.Contains("BytePositionInLine", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task batch_keeps_valid_events_and_lists_rejected_ones_with_reasons()
    {
        var body = Api.Batch(
            """{"type":"track","userId":"mixed-1","event":"Good One","messageId":"mixed-a"}""",
            """{"type":"track","userId":"mixed-1","messageId":"mixed-b"}""",
            """{"type":"teleport","userId":"mixed-1","messageId":"mixed-c"}""",
            """{"type":"identify","userId":"mixed-1","traits":{"email":"m@example.com"},"messageId":"mixed-d"}""",
            """{"type":"track","event":"No Ids","messageId":"mixed-e"}""");

        var response = await _server.Collect.PostJsonAsync("v1/batch", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.ReadObjectAsync();
        Assert.Equal(2, problem["accepted"]!.GetValue<int>());
        var rejected = problem["rejected"]!.AsArray().Select(r => (Index: r!["index"]!.GetValue<int>(), Id: r["messageId"]!.GetValue<string>(), Field: r["field"]!.GetValue<string>())).ToList();
        Assert.Equal([(1, "mixed-b", "batch[1].event"), (2, "mixed-c", "batch[2].type"), (4, "mixed-e", "batch[4].userId")], rejected);
        var stored = await _server.Admin.EventsAsync("userId=mixed-1");
        Assert.Equal(["mixed-d", "mixed-a"], stored.Select(e => e["messageId"]!.GetValue<string>()));
    }

    [Fact]
    public async Task batch_without_a_batch_array_names_the_field()
    {
        var response = await _server.Collect.PostJsonAsync("v1/batch", """{"events":[]}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("batch", (await response.ReadObjectAsync())["field"]!.GetValue<string>());
    }

    [Fact]
    public async Task batch_over_2500_events_gets_413_naming_the_limit()
    {
        var body = Api.Batch(Enumerable.Range(0, 2501).Select(i => """{"type":"track","userId":"u","event":"E"}""").ToArray());

        var response = await _server.Collect.PostJsonAsync("v1/batch", body);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var problem = await response.ReadObjectAsync();
        Assert.Equal("batch", problem["field"]!.GetValue<string>());
        Assert.Contains("2500", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task exactly_2500_events_are_accepted()
    {
        var body = Api.Batch(Enumerable.Range(0, 2500).Select(i => $$"""{"type":"track","userId":"max-batch","event":"E","messageId":"max-{{i}}"}""").ToArray());

        var response = await _server.Collect.PostJsonAsync("v1/batch", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2500, (await _server.Admin.EventsAsync("userId=max-batch")).Count);
    }

    [Fact]
    public async Task body_over_500_KB_gets_413_naming_the_limit()
    {
        var padding = new string('x', 30_000);
        var body = Api.Batch(Enumerable.Range(0, 20).Select(i => JsonSerializer.Serialize(new { type = "track", userId = "big", @event = "E", properties = new { padding } })).ToArray());

        var response = await _server.Collect.PostJsonAsync("v1/batch", body);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var problem = await response.ReadObjectAsync();
        Assert.Equal("body", problem["field"]!.GetValue<string>());
        Assert.Contains("500 KB", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(await _server.Admin.EventsAsync("userId=big"));
    }

    [Fact]
    public async Task message_over_32_KB_is_rejected_and_the_rest_of_the_batch_kept()
    {
        var huge = JsonSerializer.Serialize(new { type = "track", userId = "size-1", @event = "Huge", messageId = "size-huge", properties = new { blob = new string('y', 33 * 1024) } });
        var small = """{"type":"track","userId":"size-1","event":"Small","messageId":"size-small"}""";

        var response = await _server.Collect.PostJsonAsync("v1/batch", Api.Batch(huge, small));

        var problem = await response.ReadObjectAsync();
        var rejection = Assert.Single(problem["rejected"]!.AsArray())!;
        Assert.Equal("batch[0]", rejection["field"]!.GetValue<string>());
        Assert.Contains("32768", rejection["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("size-small", Assert.Single(await _server.Admin.EventsAsync("userId=size-1"))["messageId"]!.GetValue<string>());
    }

    [Fact]
    public async Task unsupported_content_encoding_is_refused_naming_the_header()
    {
        var content = Api.Json("""{"userId":"enc","event":"E"}""");
        content.Headers.ContentEncoding.Add("br");

        var response = await _server.Collect.PostAsync("v1/track", content);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("Content-Encoding", (await response.ReadObjectAsync())["field"]!.GetValue<string>());
    }

    [Fact]
    public async Task management_api_rejects_bad_query_parameters_by_name()
    {
        var limit = await _server.Admin.GetAsync("api/events?limit=0");
        var type = await _server.Admin.GetAsync("api/events?type=teleport");
        var cursor = await _server.Admin.GetAsync("api/events?cursor=abc");

        Assert.Equal("limit", (await limit.ReadObjectAsync())["field"]!.GetValue<string>());
        Assert.Equal("type", (await type.ReadObjectAsync())["field"]!.GetValue<string>());
        Assert.Equal("cursor", (await cursor.ReadObjectAsync())["field"]!.GetValue<string>());
    }

    [Fact]
    public async Task stored_raw_payload_keeps_every_field_the_client_sent()
    {
        var body = """{"userId":"raw-1","event":"Custom","properties":{"nested":{"deep":[1,{"x":true}]}},"context":{"ip":"203.0.113.9","library":{"name":"curl","version":"8"}},"integrations":{"All":false},"customTopLevel":"kept"}""";

        await _server.Collect.PostJsonAsync("v1/track", body);

        var stored = Assert.Single(await _server.Admin.EventsAsync("userId=raw-1"));
        foreach (var (field, value) in JsonNode.Parse(body)!.AsObject())
        {
            Assert.True(JsonNode.DeepEquals(value, stored[field]), field);
        }
    }
}
