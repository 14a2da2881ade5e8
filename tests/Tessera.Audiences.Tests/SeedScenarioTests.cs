using Tessera.Testing;

namespace Tessera.Audiences.Tests;

/// <summary>The three seed scenarios of issue 5, end to end through the collection API.</summary>
public sealed class SeedScenarioTests
{
    [Fact]
    public async Task an_engaged_visitor_who_gives_an_email_leaves_engaged_visitors_and_enters_loyal_visitors_by_itself()
    {
        await using var server = await TestServer.StartAsync();
        var engaged = await server.CreateSegmentAsync("Engaged Visitors",
            """{"and":[{"event":"Page Viewed","within":"30d","count":{"op":"gte","value":2}},{"identifier":"email","op":"not_exists"}]}""");
        var loyal = await server.CreateSegmentAsync("Loyal Visitors",
            """{"and":[{"event":"Page Viewed","within":"30d","count":{"op":"gte","value":2}},{"identifier":"email","op":"exists"}]}""");

        await server.SendAsync("track", """{"anonymousId":"visitor-1","event":"Page Viewed","properties":{"path":"/"}}""");
        Assert.Empty(await server.SegmentsOfAsync("anonymous_id:visitor-1"));
        await server.SendAsync("track", """{"anonymousId":"visitor-1","event":"Page Viewed","properties":{"path":"/pricing"}}""");
        Assert.Equal([engaged], await server.SegmentsOfAsync("anonymous_id:visitor-1"));

        // The newsletter form: the visitor gives an email. Nothing else is done by anyone.
        await server.SendAsync("identify", """{"anonymousId":"visitor-1","traits":{"email":"ada@example.com"}}""");
        Assert.Equal([loyal], await server.SegmentsOfAsync("anonymous_id:visitor-1"));
        Assert.Equal([loyal], await server.SegmentsOfAsync("email:ada@example.com"));
        var history = await server.HistoryOfAsync("email:ada@example.com");
        Assert.Equal([$"entered {engaged}", $"exited {engaged}", $"entered {loyal}"], history.Select(h => $"{h["type"]} {h["segmentId"]}"));
        Assert.Equal(history[1]["seq"]!.GetValue<long>(), history[2]["seq"]!.GetValue<long>()); // one message, both changes
    }

    [Fact]
    public async Task first_visit_and_bought_product_x_within_15_minutes()
    {
        await using var server = await TestServer.StartAsync();
        var quick = await server.CreateSegmentAsync("Bought p-42 within 15 minutes of the first visit", """
            {"sequence":[{"event":"Page Viewed","first":true},{"event":"Order Completed","where":[{"property":"product_id","op":"eq","value":"p-42"}]}],"within":"15m"}
            """);
        var start = DateTimeOffset.UtcNow.AddDays(-2);
        string At(int minutes) => start.AddMinutes(minutes).ToString("O");

        // Quick: first visit, bought p-42 ten minutes later.
        await server.SendAsync("track", $$$"""{"userId":"quick","event":"Page Viewed","timestamp":"{{{At(0)}}}"}""");
        await server.SendAsync("track", $$$"""{"userId":"quick","event":"Order Completed","timestamp":"{{{At(10)}}}","properties":{"product_id":"p-42"}}""");
        // Slow: bought p-42, but twenty minutes after the first visit (a later visit does not count as the first).
        await server.SendAsync("track", $$$"""{"userId":"slow","event":"Page Viewed","timestamp":"{{{At(0)}}}"}""");
        await server.SendAsync("track", $$$"""{"userId":"slow","event":"Page Viewed","timestamp":"{{{At(15)}}}"}""");
        await server.SendAsync("track", $$$"""{"userId":"slow","event":"Order Completed","timestamp":"{{{At(20)}}}","properties":{"product_id":"p-42"}}""");
        // Other product: quick, but not product X.
        await server.SendAsync("track", $$$"""{"userId":"other","event":"Page Viewed","timestamp":"{{{At(0)}}}"}""");
        await server.SendAsync("track", $$$"""{"userId":"other","event":"Order Completed","timestamp":"{{{At(5)}}}","properties":{"product_id":"p-7"}}""");
        // Order before visit: the purchase must come after the visit.
        await server.SendAsync("track", $$$"""{"userId":"backwards","event":"Order Completed","timestamp":"{{{At(0)}}}","properties":{"product_id":"p-42"}}""");
        await server.SendAsync("track", $$$"""{"userId":"backwards","event":"Page Viewed","timestamp":"{{{At(3)}}}"}""");

        var members = await server.MembersAsync(quick);
        Assert.Equal([await server.ProfileIdAsync("user_id:quick")], members);
    }

    [Fact]
    public async Task big_spenders_of_the_last_30_days_who_did_not_open_an_email_in_14_days()
    {
        await using var server = await TestServer.StartAsync();
        var target = await server.CreateSegmentAsync("Spent over 500 in 30 days, no email opened in 14 days", """
            {"and":[{"event":"Order Completed","within":"30d","sum":{"property":"revenue","op":"gt","value":500}},
                    {"not":{"event":"Email Opened","within":"14d"}}]}
            """);
        string Ago(int days) => Segments.Ago(TimeSpan.FromDays(days));

        // Qualifies: 300 + 250 within 30 days, last email opened 20 days ago.
        await server.SendAsync("track", $$$"""{"userId":"big","event":"Order Completed","timestamp":"{{{Ago(3)}}}","properties":{"revenue":300}}""");
        await server.SendAsync("track", $$$"""{"userId":"big","event":"Order Completed","timestamp":"{{{Ago(25)}}}","properties":{"revenue":250}}""");
        await server.SendAsync("track", $$$"""{"userId":"big","event":"Email Opened","timestamp":"{{{Ago(20)}}}"}""");
        // Spent enough, but opened an email 3 days ago.
        await server.SendAsync("track", $$$"""{"userId":"reader","event":"Order Completed","timestamp":"{{{Ago(2)}}}","properties":{"revenue":900}}""");
        await server.SendAsync("track", $$$"""{"userId":"reader","event":"Email Opened","timestamp":"{{{Ago(3)}}}"}""");
        // Spent enough, but 40 days ago.
        await server.SendAsync("track", $$$"""{"userId":"old","event":"Order Completed","timestamp":"{{{Ago(40)}}}","properties":{"revenue":900}}""");
        // Spent 500 exactly: not over the threshold.
        await server.SendAsync("track", $$$"""{"userId":"even","event":"Order Completed","timestamp":"{{{Ago(1)}}}","properties":{"revenue":500}}""");

        Assert.Equal([await server.ProfileIdAsync("user_id:big")], await server.MembersAsync(target));

        // The qualifying customer opens an email: they leave at once.
        await server.SendAsync("track", """{"userId":"big","event":"Email Opened"}""");
        Assert.Empty(await server.MembersAsync(target));
    }
}
