using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Tessera.Testing;

namespace Tessera.Collection.Tests;

/// <summary>The six calls and batch, with Segment's field names, defaults and timestamp rules.</summary>
public sealed class SegmentSpecTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    [Theory]
    [InlineData("identify", """{"userId":"spec-identify","traits":{"email":"ann@example.com","plan":"pro"}}""", null)]
    [InlineData("track", """{"userId":"spec-track","event":"Order Completed","properties":{"revenue":42.5}}""", "Order Completed")]
    [InlineData("page", """{"anonymousId":"spec-page","name":"Pricing","properties":{"path":"/pricing"}}""", "Pricing")]
    [InlineData("screen", """{"userId":"spec-screen","name":"Home"}""", "Home")]
    [InlineData("group", """{"userId":"spec-group","groupId":"acme","traits":{"employees":40}}""", null)]
    [InlineData("alias", """{"userId":"spec-alias","previousId":"anon-9"}""", null)]
    public async Task each_call_type_is_stored_with_its_fields_and_read_back(string type, string body, string? eventName)
    {
        var response = await _server.Collect.PostJsonAsync($"v1/{type}", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"success":true}""", await response.Content.ReadAsStringAsync());
        var sent = System.Text.Json.Nodes.JsonNode.Parse(body)!.AsObject();
        var id = sent["userId"]?.GetValue<string>();
        var stored = Assert.Single(await _server.Admin.EventsAsync(id is null ? $"anonymousId={sent["anonymousId"]}" : $"userId={id}"));
        Assert.Equal(type, stored["type"]!.GetValue<string>());
        Assert.Equal(eventName, stored[type == "track" ? "event" : "name"]?.GetValue<string>());
        foreach (var (field, value) in sent)
        {
            Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(value, stored[field]), $"{field}: sent {value}, stored {stored[field]}");
        }

        Assert.NotNull(stored["messageId"]);
        Assert.NotNull(stored["receivedAt"]);
        Assert.NotNull(stored["timestamp"]);
        Assert.NotNull(stored["sourceId"]);
    }

    [Fact]
    public async Task timestamp_is_corrected_for_clock_skew_from_sentAt_and_originalTimestamp()
    {
        // The device clock is 1 hour fast; the call was made 5 seconds before it was sent.
        var deviceNow = DateTimeOffset.UtcNow.AddHours(1);
        var body = $$"""{"userId":"skew-1","event":"Skewed","timestamp":"{{Iso(deviceNow.AddSeconds(-5))}}","sentAt":"{{Iso(deviceNow)}}"}""";

        await _server.Collect.PostJsonAsync("v1/track", body);

        var stored = Assert.Single(await _server.Admin.EventsAsync("userId=skew-1"));
        var receivedAt = DateTimeOffset.Parse(stored["receivedAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        var timestamp = DateTimeOffset.Parse(stored["timestamp"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(receivedAt.AddSeconds(-5), timestamp);
        Assert.Equal(Iso(deviceNow.AddSeconds(-5)), stored["originalTimestamp"]!.GetValue<string>());
        Assert.Equal(Iso(deviceNow), stored["sentAt"]!.GetValue<string>());
    }

    [Fact]
    public async Task historical_timestamp_without_sentAt_is_kept_as_given()
    {
        await _server.Collect.PostJsonAsync("v1/track", """{"userId":"history-1","event":"Old Order","timestamp":"2019-03-04T05:06:07.000Z"}""");

        var stored = Assert.Single(await _server.Admin.EventsAsync("userId=history-1"));
        Assert.Equal("2019-03-04T05:06:07.000Z", stored["timestamp"]!.GetValue<string>());
    }

    [Fact]
    public async Task explicit_timestamp_beside_originalTimestamp_is_kept_as_the_event_time()
    {
        // What RudderStack's Node SDK sends for track({..., timestamp: pastDate}).
        var now = DateTimeOffset.UtcNow;
        var body = $$"""{"userId":"rudder-past-1","event":"Old Order","timestamp":"2025-06-01T08:00:00.000Z","originalTimestamp":"{{Iso(now)}}","sentAt":"{{Iso(now)}}"}""";

        await _server.Collect.PostJsonAsync("v1/track", body);

        var stored = Assert.Single(await _server.Admin.EventsAsync("userId=rudder-past-1"));
        Assert.Equal("2025-06-01T08:00:00.000Z", stored["timestamp"]!.GetValue<string>());
        Assert.Equal(Iso(now), stored["originalTimestamp"]!.GetValue<string>());
    }

    [Fact]
    public async Task batch_level_sentAt_applies_to_messages_without_their_own()
    {
        var deviceNow = DateTimeOffset.UtcNow.AddMinutes(-30); // device clock 30 minutes slow
        var body = $$"""{"sentAt":"{{Iso(deviceNow)}}","batch":[{"type":"track","userId":"batch-sent-1","event":"A","timestamp":"{{Iso(deviceNow.AddSeconds(-2))}}"}]}""";

        await _server.Collect.PostJsonAsync("v1/batch", body);

        var stored = Assert.Single(await _server.Admin.EventsAsync("userId=batch-sent-1"));
        var receivedAt = DateTimeOffset.Parse(stored["receivedAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(receivedAt.AddSeconds(-2), DateTimeOffset.Parse(stored["timestamp"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task message_without_messageId_gets_one_and_without_timestamp_gets_receivedAt()
    {
        await _server.Collect.PostJsonAsync("v1/track", """{"userId":"defaults-1","event":"Plain"}""");

        var stored = Assert.Single(await _server.Admin.EventsAsync("userId=defaults-1"));
        Assert.StartsWith("tessera-", stored["messageId"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(stored["receivedAt"]!.GetValue<string>(), stored["timestamp"]!.GetValue<string>());
    }

    [Fact]
    public async Task numeric_userId_is_accepted_and_stored_as_a_string()
    {
        var response = await _server.Collect.PostJsonAsync("v1/identify", """{"userId":4242,"traits":{"name":"Num"}}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("4242", Assert.Single(await _server.Admin.EventsAsync("userId=4242"))["userId"]!.GetValue<string>());
    }

    [Fact]
    public async Task write_key_in_the_body_authenticates_and_is_not_stored()
    {
        var response = await _server.Anonymous.PostJsonAsync("v1/track", $$"""{"writeKey":"{{TestServer.WriteKey}}","userId":"body-key-1","event":"Keyed"}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stored = Assert.Single(await _server.Admin.EventsAsync("userId=body-key-1"));
        Assert.Null(stored["writeKey"]);
    }

    [Fact]
    public async Task gzip_body_is_accepted()
    {
        using var content = new ByteArrayContent(Gzip("""{"batch":[{"type":"track","userId":"gzip-1","event":"Zipped"}]}"""));
        content.Headers.ContentEncoding.Add("gzip");
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        var response = await _server.Collect.PostAsync("v1/batch", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Single(await _server.Admin.EventsAsync("userId=gzip-1"));
    }

    [Fact]
    public async Task ill_formed_utf8_in_a_string_is_kept_as_the_replacement_character_and_the_batch_is_stored()
    {
        // Raw JSON goes to the store as the UTF-8 it came in: bytes that are not UTF-8 must not reach a store that
        // takes only well-formed text (a failed commit would hold up every event behind it).
        var body = Encoding.UTF8.GetBytes("""{"batch":[{"type":"track","userId":"utf8-1","event":"Bad Bytes","properties":{"note":"a_b"}},{"type":"track","userId":"utf8-2","event":"Good"}]}""");
        body[Array.IndexOf(body, (byte)'_')] = 0xFF;
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        var response = await _server.Collect.PostAsync("v1/batch", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stored = Assert.Single(await _server.Admin.EventsAsync("userId=utf8-1"));
        Assert.Equal("a\uFFFDb", stored["properties"]!["note"]!.GetValue<string>());
        Assert.Single(await _server.Admin.EventsAsync("userId=utf8-2"));
    }

    [Fact]
    public async Task text_plain_body_from_a_browser_is_accepted_with_cors_headers()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/t")
        {
            Content = new StringContent($$"""{"writeKey":"{{TestServer.WriteKey}}","type":"track","anonymousId":"browser-1","event":"Clicked"}""", Encoding.UTF8, "text/plain"),
        };
        request.Headers.Add("Origin", "http://shop.example.com");

        var response = await _server.Anonymous.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("http://shop.example.com", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Single(await _server.Admin.EventsAsync("anonymousId=browser-1"));
    }

    [Fact]
    public async Task cors_preflight_is_answered()
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, "v1/batch");
        request.Headers.Add("Origin", "http://shop.example.com");
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "content-type,authorization");

        var response = await _server.Anonymous.SendAsync(request);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Contains("POST", response.Headers.GetValues("Access-Control-Allow-Methods").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task settings_for_the_browser_sdk_point_it_back_at_tessera()
    {
        var settings = await (await _server.Anonymous.GetAsync($"v1/projects/{TestServer.WriteKey}/settings")).ReadObjectAsync();

        var segment = settings["integrations"]!["Segment.io"]!;
        Assert.Equal(TestServer.WriteKey, segment["apiKey"]!.GetValue<string>());
        Assert.Equal($"{_server.BaseAddress.Authority}/v1", segment["apiHost"]!.GetValue<string>());
        Assert.Equal("http", segment["protocol"]!.GetValue<string>());
    }

    internal static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    private static byte[] Gzip(string text)
    {
        using var output = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(output, System.IO.Compression.CompressionLevel.Fastest))
        {
            gzip.Write(Encoding.UTF8.GetBytes(text));
        }

        return output.ToArray();
    }
}
