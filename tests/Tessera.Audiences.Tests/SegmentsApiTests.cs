using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Audiences.Tests;

/// <summary>The /api/segments surface: definitions checked at the edge, CRUD, members, overlap, size over time.</summary>
public sealed class SegmentsApiTests
{
    [Fact]
    public async Task a_bad_definition_is_refused_with_the_path_of_the_bad_node()
    {
        await using var server = await TestServer.StartAsync();
        var response = await server.Admin.PostAsync("api/segments", Segments.Json("""
            {"name":"Broken","definition":{"and":[{"trait":"plan","op":"eq","value":"pro"},{"event":"Order Completed","count":{"op":"most","value":3}}]}}
            """));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("definition.and[1].count.op", problem["field"]!.GetValue<string>());
        Assert.Contains("'most' is not one of", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        var missing = await server.Admin.PostAsync("api/segments", Segments.Json("""{"name":"No definition"}"""));
        Assert.Equal("definition", (await missing.Content.ReadFromJsonAsync<JsonObject>())!["field"]!.GetValue<string>());
        var unnamed = await server.Admin.PostAsync("api/segments", Segments.Json("""{"definition":{"trait":"plan","op":"exists"}}"""));
        Assert.Equal("name", (await unnamed.Content.ReadFromJsonAsync<JsonObject>())!["field"]!.GetValue<string>());
    }

    [Fact]
    public async Task a_definition_may_be_written_in_the_text_form_and_is_answered_in_both_forms()
    {
        await using var server = await TestServer.StartAsync();
        await server.SendAsync("identify", """{"userId":"p","traits":{"plan":"pro"}}""");
        for (var i = 0; i < 3; i++) { await server.SendAsync("track", """{"userId":"p","event":"Order Completed","properties":{"revenue":60}}"""); }

        var text = "trait plan = \"pro\" and count(event \"Order Completed\" where revenue > 50, within 30d) >= 3";
        var response = await server.Admin.PostAsync("api/segments", Segments.Json($$$"""{"name":"Pro buyers","definition":{{{JsonValue.Create(text).ToJsonString()}}}}"""));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var created = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(1, created["size"]!.GetValue<int>());
        Assert.Equal("trait", created["definition"]!["and"]![0]!.AsObject().First().Key);
        Assert.Equal(3m, created["definition"]!["and"]![1]!["count"]!["value"]!.GetValue<decimal>());
        Assert.Contains("count(event \"Order Completed\" where revenue > 50, within 30d) >= 3", created["text"]!.GetValue<string>(), StringComparison.Ordinal);

        var bad = await server.Admin.PostAsync("api/segments", Segments.Json("""{"name":"Bad","definition":"trait plan \"pro\""}"""));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var problem = (await bad.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("definition (line 1, column 12)", problem["field"]!.GetValue<string>());
        Assert.Contains("expected a comparison operator", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task preview_counts_and_samples_a_definition_in_sql_without_saving_it_and_agrees_with_the_saved_audience()
    {
        await using var server = await TestServer.StartAsync();
        for (var i = 0; i < 30; i++)
        {
            await server.SendAsync("identify", $$$"""{"userId":"u{{{i:00}}}","traits":{"plan":"{{{(i % 3 == 0 ? "pro" : "free")}}}"}}""");
            for (var n = 0; n < i % 4; n++)
            {
                await server.SendAsync("track", $$$"""{"userId":"u{{{i:00}}}","event":"Order Completed","properties":{"revenue":{{{40 + (10 * n)}}}}}""");
            }
        }

        const string Definition = """
            {"and":[{"trait":"plan","op":"eq","value":"pro"},
                    {"event":"Order Completed","where":[{"property":"revenue","op":"gte","value":40}],"within":"30d","count":{"op":"gte","value":2}},
                    {"event":"Order Completed","within":"90d","sum":{"property":"revenue","op":"gte","value":90}}]}
            """;
        var response = await server.Admin.PostAsync("api/segments/preview", Segments.Json($$$"""{"definition":{{{Definition}}},"sampleSize":3,"sql":true}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var preview = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        // pro = every third user; 2+ orders = i % 4 >= 2; sum >= 90 = 40 + 50 (two orders) or more.
        var expected = Enumerable.Range(0, 30).Where(i => i % 3 == 0 && i % 4 >= 2).Count();
        Assert.Equal(expected, preview["count"]!.GetValue<long>());
        Assert.Equal(3, preview["sample"]!.AsArray().Count);
        Assert.True(preview["elapsedMs"]!.GetValue<double>() >= 0);
        Assert.Contains("SELECT", preview["sql"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.DoesNotContain("Order Completed", preview["sql"]!.GetValue<string>(), StringComparison.Ordinal); // a bound parameter, never SQL text
        Assert.Empty((await server.Admin.GetFromJsonAsync<JsonArray>("api/segments"))!);

        var saved = await server.CreateSegmentAsync("Pro repeat buyers", Definition);
        var members = await server.MembersAsync(saved);
        Assert.Equal(expected, members.Count);
        Assert.Equal(preview["sample"]!.AsArray().Select(s => s!.GetValue<string>()), members.Take(3));

        var bad = await server.Admin.PostAsync("api/segments/preview", Segments.Json("""{"definition":{"event":"X","within":"soon"}}"""));
        Assert.Equal("definition.within", (await bad.Content.ReadFromJsonAsync<JsonObject>())!["field"]!.GetValue<string>());
    }

    [Fact]
    public async Task every_problem_in_a_definition_is_listed_under_its_own_path()
    {
        await using var server = await TestServer.StartAsync();
        var response = await server.Admin.PostAsync("api/segments", Segments.Json("""
            {"name":"Many problems","definition":{"or":[{"trait":"","op":"eq","value":1},{"event":"Signed Up","within":"3 days"},{"sequence":[{"event":"A"}],"within":"15m"}]}}
            """));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = (await response.Content.ReadFromJsonAsync<JsonObject>())!["errors"]!.AsObject();
        Assert.Contains("definition.or[0].trait", errors.Select(e => e.Key));
        Assert.Contains("definition.or[1].within", errors.Select(e => e.Key));
        Assert.Contains("definition.or[2].sequence", errors.Select(e => e.Key));
    }

    [Fact]
    public async Task an_audience_is_created_read_listed_updated_and_deleted()
    {
        await using var server = await TestServer.StartAsync();
        await server.SendAsync("identify", """{"userId":"pro-1","traits":{"plan":"pro"}}""");
        await server.SendAsync("identify", """{"userId":"free-1","traits":{"plan":"free"}}""");

        var id = await server.CreateSegmentAsync("Pro plan", """{"trait":"plan","op":"eq","value":"pro"}""");
        var created = await server.GetObjectAsync($"api/segments/{id}");
        Assert.Equal("Pro plan", created["name"]!.GetValue<string>());
        Assert.Equal(1, created["size"]!.GetValue<int>());
        Assert.Equal("""{"trait":"plan","op":"eq","value":"pro"}""", created["definition"]!.ToJsonString());
        Assert.Single((await server.Admin.GetFromJsonAsync<JsonArray>("api/segments"))!);
        Assert.Equal([id], await server.SegmentsOfAsync("user_id:pro-1"));

        var update = await server.Admin.PutAsync($"api/segments/{id}", Segments.Json("""{"name":"Any plan","definition":{"trait":"plan","op":"in","value":["pro","free"]}}"""));
        Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        Assert.Equal(2, (await server.GetObjectAsync($"api/segments/{id}"))["size"]!.GetValue<int>());
        Assert.Equal([id], await server.SegmentsOfAsync("user_id:free-1"));

        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync($"api/segments/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.GetAsync($"api/segments/{id}")).StatusCode);
        Assert.Empty(await server.SegmentsOfAsync("user_id:pro-1"));
        var history = await server.HistoryOfAsync("user_id:free-1");
        Assert.Equal(["entered audience changed", "exited audience deleted"], history.Select(h => $"{h["type"]} {h["reason"]}"));
    }

    [Fact]
    public async Task references_must_name_existing_audiences_and_a_referenced_audience_cannot_be_deleted()
    {
        await using var server = await TestServer.StartAsync();
        var unknown = await server.Admin.PostAsync("api/segments", Segments.Json("""{"name":"X","definition":{"segment":"seg_nope"}}"""));
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("seg_nope", (await unknown.Content.ReadAsStringAsync()), StringComparison.Ordinal);

        await server.SendAsync("identify", """{"userId":"u1","traits":{"plan":"pro","country":"FR"}}""");
        var pro = await server.CreateSegmentAsync("Pro", """{"trait":"plan","op":"eq","value":"pro"}""");
        var french = await server.CreateSegmentAsync("French pro", $$$"""{"and":[{"segment":"{{{pro}}}"},{"trait":"country","op":"eq","value":"FR"}]}""");
        Assert.Equal(1, (await server.GetObjectAsync($"api/segments/{french}"))["size"]!.GetValue<int>());

        var delete = await server.Admin.DeleteAsync($"api/segments/{pro}");
        Assert.Equal(HttpStatusCode.Conflict, delete.StatusCode);
        Assert.Contains(french, await delete.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var loop = await server.Admin.PutAsync($"api/segments/{pro}", Segments.Json($$$"""{"name":"Pro","definition":{"segment":"{{{french}}}"}}"""));
        Assert.Equal(HttpStatusCode.BadRequest, loop.StatusCode);
        Assert.Contains("loop", await loop.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // A change to the referenced audience moves the members of the one that refers to it.
        await server.SendAsync("identify", """{"userId":"u1","traits":{"plan":"free"}}""");
        Assert.Empty(await server.MembersAsync(french));
    }

    [Fact]
    public async Task members_page_through_in_id_order_and_overlap_counts_the_shared_ones()
    {
        await using var server = await TestServer.StartAsync();
        for (var i = 0; i < 25; i++)
        {
            await server.SendAsync("identify", $$$"""{"userId":"u{{{i:00}}}","traits":{"score":{{{i}}},"vip":{{{(i % 2 == 0 ? "true" : "false")}}}}}""");
        }

        var high = await server.CreateSegmentAsync("Score 10+", """{"trait":"score","op":"gte","value":10}""");
        var vip = await server.CreateSegmentAsync("VIP", """{"trait":"vip","op":"eq","value":true}""");

        var seen = new List<string>();
        string? after = null;
        do
        {
            var page = await server.GetObjectAsync($"api/segments/{high}/members?limit=4" + (after is null ? "" : $"&after={after}"));
            Assert.Equal(15, page["count"]!.GetValue<int>());
            seen.AddRange(page["items"]!.AsArray().Select(i => i!.GetValue<string>()));
            after = page["next"]?.GetValue<string>();
        }
        while (after is not null);
        Assert.Equal(15, seen.Count);
        Assert.Equal(seen.Order(StringComparer.Ordinal), seen);
        Assert.Equal(15, seen.Distinct().Count());

        var overlap = await server.GetObjectAsync($"api/segments/overlap?ids={high},{vip}");
        Assert.Equal(8, overlap["inAll"]!.GetValue<int>());   // the even scores 10, 12, ..., 24
        Assert.Equal(20, overlap["inAny"]!.GetValue<int>());  // 15 high + 13 even - 8 both
        Assert.Equal(8, overlap["pairs"]![0]!["both"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.BadRequest, (await server.Admin.GetAsync($"api/segments/overlap?ids={high}")).StatusCode);
    }

    [Fact]
    public async Task the_size_over_time_adds_entries_and_subtracts_exits()
    {
        await using var server = await TestServer.StartAsync();
        await server.SendAsync("identify", """{"userId":"a","traits":{"plan":"pro"}}""");
        await server.SendAsync("identify", """{"userId":"b","traits":{"plan":"pro"}}""");
        var pro = await server.CreateSegmentAsync("Pro", """{"trait":"plan","op":"eq","value":"pro"}""");
        await server.SendAsync("identify", """{"userId":"c","traits":{"plan":"pro"}}""");
        await server.SendAsync("identify", """{"userId":"a","traits":{"plan":"free"}}""");

        var size = await server.GetObjectAsync($"api/segments/{pro}/size?bucket=hour");
        Assert.Equal(2, size["current"]!.GetValue<int>());
        var last = size["points"]!.AsArray()[^1]!;
        Assert.Equal(2, last["size"]!.GetValue<long>());
        Assert.Equal(3, size["points"]!.AsArray().Sum(p => p!["entered"]!.GetValue<long>()));
        Assert.Equal(1, size["points"]!.AsArray().Sum(p => p!["exited"]!.GetValue<long>()));
        Assert.Equal(HttpStatusCode.BadRequest, (await server.Admin.GetAsync($"api/segments/{pro}/size?bucket=fortnight")).StatusCode);

        var changes = await server.GetObjectAsync($"api/segments/{pro}/changes");
        Assert.Equal(["entered", "entered", "entered", "exited"], changes["items"]!.AsArray().Select(c => c!["type"]!.GetValue<string>()));
        Assert.Equal(1, (await server.GetObjectAsync("api/stats"))["segments"]!.GetValue<int>());
    }
}
