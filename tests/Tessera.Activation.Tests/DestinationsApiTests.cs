using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Tessera.Activation.Tests;

/// <summary>The destinations API: create, read, change, delete; every refusal is problem+json naming the field at fault.</summary>
public sealed class DestinationsApiTests
{
    [Fact]
    public async Task a_destination_is_created_read_changed_and_deleted_and_its_secret_is_never_read_back()
    {
        await using var server = await Activation.StartAsync();
        var pro = await server.CreateSegmentAsync("Pro", """{"trait":"plan","op":"eq","value":"pro"}""");
        var created = await server.Admin.PostAsync("api/destinations", Activation.Json($$$"""
            {"type":"webhook","name":"CRM","url":"https://crm.example.com/hooks/tessera","secret":"{{{Activation.Secret}}}",
             "segments":["{{{pro}}}"],"events":["Order Completed"],"where":[{"property":"revenue","op":"gt","value":10}],
             "purpose":"marketing","headers":{"Authorization":"Bearer x"},"batching":{"maxSize":50}}
            """));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = (await created.Content.ReadFromJsonAsync<JsonObject>())!;
        var id = body["id"]!.GetValue<string>();
        Assert.StartsWith("dst_", id, StringComparison.Ordinal);
        Assert.Equal($"/api/destinations/{id}", created.Headers.Location!.ToString());
        Assert.DoesNotContain(Activation.Secret, body.ToJsonString(), StringComparison.Ordinal);
        Assert.True(body["secretSet"]!.GetValue<bool>());
        Assert.Equal("CRM", body["name"]!.GetValue<string>());
        Assert.Equal(50, body["batching"]!["maxSize"]!.GetValue<int>());
        Assert.Equal(1000, body["batching"]!["maxWaitMs"]!.GetValue<int>());
        Assert.Equal("gt", body["where"]![0]!["op"]!.GetValue<string>());

        var read = await server.GetObjectAsync($"api/destinations/{id}");
        Assert.Equal(body.ToJsonString(), read.ToJsonString());
        Assert.Single((await server.Admin.GetFromJsonAsync<JsonArray>("api/destinations"))!);

        // A PUT without the secret keeps the stored one.
        var changed = await server.Admin.PutAsync($"api/destinations/{id}", Activation.Json("""{"type":"webhook","url":"https://crm.example.com/v2","events":["Order Refunded"],"enabled":false}"""));
        Assert.True(changed.IsSuccessStatusCode, await changed.Content.ReadAsStringAsync());
        var after = (await changed.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("https://crm.example.com/v2", after["url"]!.GetValue<string>());
        Assert.False(after["enabled"]!.GetValue<bool>());
        Assert.True(after["secretSet"]!.GetValue<bool>());
        Assert.False(after["batching"]!["enabled"]!.GetValue<bool>());
        Assert.Equal(body["createdAt"]!.ToJsonString(), after["createdAt"]!.ToJsonString());

        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync($"api/destinations/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.GetAsync($"api/destinations/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.GetAsync($"api/destinations/{id}/deliveries")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.DeleteAsync($"api/destinations/{id}")).StatusCode);
    }

    [Theory]
    [InlineData("""{"url":"https://x.example","secret":"0123456789abcdefgh","events":["A"]}""", "type")]
    [InlineData("""{"type":"pigeon","url":"https://x.example","secret":"0123456789abcdefgh","events":["A"]}""", "type")]
    [InlineData("""{"type":"file","events":["A"]}""", "events")]
    [InlineData("""{"type":"webhook","secret":"0123456789abcdefgh","events":["A"]}""", "url")]
    [InlineData("""{"type":"webhook","url":"not a url","secret":"0123456789abcdefgh","events":["A"]}""", "url")]
    [InlineData("""{"type":"webhook","url":"ftp://x.example/in","secret":"0123456789abcdefgh","events":["A"]}""", "url")]
    [InlineData("""{"type":"webhook","url":"https://x.example","events":["A"]}""", "secret")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"short","events":["A"]}""", "secret")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefgh","segments":["seg_nope"]}""", "segments[0]")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefgh","segments":"seg_a"}""", "segments")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefgh","events":["A",""]}""", "events[1]")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefgh","where":[{"property":"revenue","op":"bigger","value":1}]}""", "where[0].op")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefgh","where":[{"property":"revenue","op":"gt"}]}""", "where[0].value")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefgh","events":["A"],"purpose":"no spaces allowed!"}""", "purpose")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefgh","events":["A"],"headers":{"X-Tessera-Signature":"forged"}}""", "headers.X-Tessera-Signature")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefgh","events":["A"],"batching":{"maxSize":0}}""", "batching.maxSize")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefgh","events":["A"],"batching":{"maxWaitMs":600000}}""", "batching.maxWaitMs")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefgh","events":["A"],"frequencyCap":{"max":1,"per":"daily"}}""", "frequencyCap.per")]
    [InlineData("""{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefgh","events":["A"],"frequencyCap":{"per":"1d"}}""", "frequencyCap.max")]
    [InlineData("""{"type":"email","events":["A"],"from":"a@b.example","subject":"s","body":"b"}""", "smtp")]
    [InlineData("""{"type":"email","events":["A"],"smtp":{"host":"mail","port":70000},"from":"a@b.example","subject":"s","body":"b"}""", "smtp.port")]
    [InlineData("""{"type":"email","events":["A"],"smtp":{"host":"mail","security":"tls1"},"from":"a@b.example","subject":"s","body":"b"}""", "smtp.security")]
    [InlineData("""{"type":"email","events":["A"],"smtp":{"host":"mail"},"from":"not an address","subject":"s","body":"b"}""", "from")]
    [InlineData("""{"type":"email","events":["A"],"smtp":{"host":"mail"},"from":"a@b.example","to":"email","subject":"s","body":"b"}""", "to")]
    [InlineData("""{"type":"email","events":["A"],"smtp":{"host":"mail"},"from":"a@b.example","subject":"Hi {{ traits.name","body":"b"}""", "subject")]
    [InlineData("""{"type":"email","events":["A"],"smtp":{"host":"mail"},"from":"a@b.example","subject":"Hi","body":"{% if x %}never closed"}""", "body")]
    public async Task a_bad_destination_is_refused_naming_the_field(string json, string field)
    {
        await using var server = await Activation.StartAsync();
        var response = await server.Admin.PostAsync("api/destinations", Activation.Json(json));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(field, problem["field"]!.GetValue<string>());
        Assert.StartsWith(field, problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty((await server.Admin.GetFromJsonAsync<JsonArray>("api/destinations"))!);
    }

    [Fact]
    public async Task replaying_a_delivery_that_is_not_a_dead_letter_is_refused_naming_it()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        var destination = await server.CreateDestinationAsync(Activation.Webhook(receiver, events: """["A"]"""));
        await server.SendAsync("track", """{"userId":"u","event":"A"}""");
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination, "delivered")).Count == 1, "the delivery");
        var id = (await server.DeliveriesAsync(destination))[0]["id"]!.GetValue<long>();
        var response = await server.Admin.PostAsync($"api/destinations/{destination}/dead-letters/replay", Activation.Json($$$"""{"ids":[{{{id}}}]}"""));
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains($"delivery {id} is not a dead letter", (await response.Content.ReadFromJsonAsync<JsonObject>())!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await server.Admin.GetAsync($"api/destinations/{destination}/deliveries?status=lost")).StatusCode);
    }

    [Fact]
    public async Task the_api_needs_the_admin_token()
    {
        await using var server = await Activation.StartAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, (await server.Anonymous.GetAsync("api/destinations")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await server.Anonymous.PostAsync("api/destinations", Activation.Json("{}"))).StatusCode);
    }
}
