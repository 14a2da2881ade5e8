using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Profiles.Tests;

/// <summary>Computed traits: defined by API or configuration, computed over history, kept current as events arrive.</summary>
public sealed class ComputedTraitTests
{
    private static string Order(string user, decimal revenue, string product, DateTimeOffset at) =>
        $$"""{"userId":"{{user}}","event":"Order Completed","properties":{"revenue":{{revenue}},"product_id":"{{product}}","channel":"web"},"timestamp":"{{at.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffZ}}"}""";

    [Fact]
    public async Task every_function_is_computed_over_history_and_updated_in_real_time()
    {
        await using var server = await TestServer.StartAsync();
        var now = DateTimeOffset.UtcNow;
        await server.SendAsync("track", Order("c-1", 100, "p-1", now.AddDays(-40)));
        await server.SendAsync("track", Order("c-1", 20, "p-2", now.AddDays(-10)));
        await server.SendAsync("track", Order("c-1", 30, "p-2", now.AddDays(-2)));
        await server.SendAsync("track", """{"userId":"c-1","event":"Page Viewed"}""");

        foreach (var (name, function, property, within) in new (string, string, string?, string?)[]
        {
            ("orders", "count", null, null), ("total_spent", "sum", "revenue", null), ("average_order", "average", "revenue", null),
            ("smallest_order", "min", "revenue", null), ("largest_order", "max", "revenue", null), ("first_order_at", "first", null, null),
            ("last_product", "last", "product_id", null), ("favourite_product", "most_frequent", "product_id", null),
            ("products_bought", "distinct_count", "product_id", null), ("spent_30d", "sum", "revenue", "30d"), ("orders_30d", "count", null, "30d"),
        })
        {
            var created = await server.Admin.PostAsJsonAsync("api/computed-traits", new { name, function, @event = "Order Completed", property, within });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var computed = (await server.ProfileByAsync("user_id:c-1"))!["computed"]!;
        Assert.Equal(3, computed["orders"]!.GetValue<long>());
        Assert.Equal(150m, computed["total_spent"]!.GetValue<decimal>());
        Assert.Equal(50m, computed["average_order"]!.GetValue<decimal>());
        Assert.Equal(20m, computed["smallest_order"]!.GetValue<decimal>());
        Assert.Equal(100m, computed["largest_order"]!.GetValue<decimal>());
        Assert.Equal(now.AddDays(-40).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture), computed["first_order_at"]!.GetValue<string>());
        Assert.Equal("p-2", computed["last_product"]!.GetValue<string>());
        Assert.Equal("p-2", computed["favourite_product"]!.GetValue<string>());
        Assert.Equal(2, computed["products_bought"]!.GetValue<int>());
        Assert.Equal(50m, computed["spent_30d"]!.GetValue<decimal>());
        Assert.Equal(2, computed["orders_30d"]!.GetValue<int>());

        // A new order updates every trait at once.
        await server.SendAsync("track", Order("c-1", 5, "p-3", now));
        computed = (await server.ProfileByAsync("user_id:c-1"))!["computed"]!;
        Assert.Equal(4, computed["orders"]!.GetValue<long>());
        Assert.Equal(155m, computed["total_spent"]!.GetValue<decimal>());
        Assert.Equal(5m, computed["smallest_order"]!.GetValue<decimal>());
        Assert.Equal("p-3", computed["last_product"]!.GetValue<string>());
        Assert.Equal(55m, computed["spent_30d"]!.GetValue<decimal>());
        Assert.Equal(3, computed["products_bought"]!.GetValue<int>());
    }

    [Fact]
    public async Task filters_select_the_events_a_trait_counts()
    {
        await using var server = await TestServer.StartAsync();
        await server.Admin.PostAsJsonAsync("api/computed-traits", new
        {
            name = "big_web_orders",
            function = "count",
            @event = "Order Completed",
            where = new object[] { new { property = "revenue", op = "gte", value = 50 }, new { property = "channel", op = "eq", value = "web" } },
        });

        await server.SendAsync("track", Order("f-1", 60, "p", DateTimeOffset.UtcNow));
        await server.SendAsync("track", Order("f-1", 10, "p", DateTimeOffset.UtcNow));
        await server.SendAsync("track", """{"userId":"f-1","event":"Order Completed","properties":{"revenue":80,"channel":"store"}}""");

        Assert.Equal(1, (await server.ProfileByAsync("user_id:f-1"))!["computed"]!["big_web_orders"]!.GetValue<long>());
    }

    [Fact]
    public async Task computed_traits_follow_merges_and_survive_a_restart()
    {
        var dataDir = TempDirectory.Create("computed-restart");
        string id;
        await using (var server = await TestServer.StartAsync(dataDir))
        {
            await server.Admin.PostAsJsonAsync("api/computed-traits", new { name = "total_spent", function = "sum", @event = "Order Completed", property = "revenue" });
            await server.SendAsync("track", """{"anonymousId":"m-anon","event":"Order Completed","properties":{"revenue":12}}""");
            await server.SendAsync("track", """{"userId":"m-user","event":"Order Completed","properties":{"revenue":30}}""");
            await server.SendAsync("identify", """{"userId":"m-user","anonymousId":"m-anon"}""");
            var profile = (await server.ProfileByAsync("user_id:m-user"))!;
            id = profile.Id();
            Assert.Equal(42m, profile["computed"]!["total_spent"]!.GetValue<decimal>());
        }

        await using var restarted = await TestServer.StartAsync(dataDir);
        Assert.Equal(42m, (await restarted.ProfileAsync(id))["computed"]!["total_spent"]!.GetValue<decimal>());
        Assert.Single((await restarted.Admin.GetFromJsonAsync<JsonArray>("api/computed-traits"))!);
    }

    [Fact]
    public async Task configured_traits_apply_from_the_start_and_cannot_be_deleted_through_the_api()
    {
        var dir = TempDirectory.Create("computed-config");
        var file = Path.Combine(dir, "computed.json");
        await File.WriteAllTextAsync(file, """[{"name":"visits","function":"count","event":"Page Viewed"}]""");
        await using var server = await TestServer.StartAsync(dir, o => o.ComputedTraitsFile = file);

        await server.SendAsync("track", """{"userId":"cfg-1","event":"Page Viewed"}""");
        var delete = await server.Admin.DeleteAsync("api/computed-traits/visits");

        Assert.Equal(1, (await server.ProfileByAsync("user_id:cfg-1"))!["computed"]!["visits"]!.GetValue<long>());
        Assert.Equal(HttpStatusCode.Conflict, delete.StatusCode);
        var listed = Assert.Single((await server.Admin.GetFromJsonAsync<JsonArray>("api/computed-traits"))!)!;
        Assert.Equal("configuration", listed["definedIn"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"name":"Bad Name","function":"count","event":"E"}""", "name")]
    [InlineData("""{"name":"t","function":"count"}""", "event")]
    [InlineData("""{"name":"t","function":"sum","event":"E"}""", "property")]
    [InlineData("""{"name":"t","function":"count","event":"E","within":"soon"}""", "within")]
    [InlineData("""{"name":"t","function":"count","event":"E","where":[{"property":"x","op":"near","value":1}]}""", "where[0]")]
    [InlineData("""{"name":"t","function":"median","event":"E"}""", "function")]
    public async Task invalid_definitions_are_refused_naming_the_field(string body, string field)
    {
        await using var server = await TestServer.StartAsync();

        var response = await server.Admin.PostAsync("api/computed-traits", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(field, (await response.Content.ReadFromJsonAsync<JsonObject>())!["field"]!.GetValue<string>());
    }
}
