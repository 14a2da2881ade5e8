using Tessera.Activation.Tests;
using Hooks = Tessera.Activation.Tests.Activation;

namespace Tessera.Journeys.Tests;

/// <summary>
/// Issue 6's seed scenarios, end to end: events through /v1, the journey moved by the logs and by the server's
/// clock (a fake one the test moves: an hour is an hour of server time), sends through the outbox to a real
/// webhook receiver and the real SMTP server.
/// </summary>
public sealed class SeedScenarioTests
{
    private const string BrowseAbandonment = """
        {"name": "Browse abandonment",
         "entry": {"event": "Product Viewed"},
         "exit": [{"event": "Unsubscribed"}],
         "steps": [
           {"id": "wait_for_purchase", "type": "wait_for_event", "event": "Order Completed", "timeout": "1h", "onEvent": "bought", "onTimeout": "remind"},
           {"id": "remind", "type": "send", "destination": "DESTINATION", "next": "exit"},
           {"id": "bought", "type": "exit", "reason": "purchased"}]}
        """;

    [Fact]
    public async Task browsing_without_buying_gets_a_reminder_one_hour_later()
    {
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Journeys.StartAsync(clock);
        var destination = await server.JourneyWebhookAsync(receiver);
        var journey = await server.CreateJourneyAsync(BrowseAbandonment.Replace("DESTINATION", destination, StringComparison.Ordinal));

        await server.SendAsync("track", """{"userId":"ann","event":"Product Viewed","properties":{"product_id":"p-42","name":"Red shoes"}}""");
        await server.RunReachesAsync(journey, "ann", "wait_for_purchase");

        await clock.AdvanceAsync(TimeSpan.FromMinutes(59));
        await Task.Delay(1500);
        Assert.Empty(receiver.JourneySends());

        await clock.AdvanceAsync(TimeSpan.FromMinutes(1));
        await Hooks.EventuallyAsync(() => receiver.JourneySends().Count == 1, "the reminder");
        var reminder = receiver.JourneySends()[0];
        Assert.Equal(journey, reminder["journey"]!["id"]!.GetValue<string>());
        Assert.Equal("Browse abandonment", reminder["journey"]!["name"]!.GetValue<string>());
        Assert.Equal("remind", reminder["journey"]!["step"]!.GetValue<string>());
        Assert.Equal(1, reminder["journey"]!["run"]!.GetValue<int>());
        Assert.Equal("Red shoes", reminder["entry"]!["event"]!["properties"]!["name"]!.GetValue<string>());
        Assert.Equal("ann", reminder["identifiers"]!["user_id"]!.GetValue<string>());
        Assert.True(Hooks.SignatureIsValid(receiver.Requests.First(r => r.AnsweredWith == 200)));
        // Sent when the hour was up by the server's clock, not before.
        var sentAt = DateTimeOffset.Parse(reminder["at"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        var enteredAt = DateTimeOffset.Parse(reminder["journey"]!["enteredAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(sentAt - enteredAt, TimeSpan.FromMinutes(60), TimeSpan.FromMinutes(61));

        await server.RunReachesAsync(journey, "ann", "remind", "completed");
        var delivery = (await server.DeliveriesAsync(destination)).Single();
        Assert.Equal("journey_step", delivery["type"]!.GetValue<string>());
        Assert.Equal(reminder["idempotencyKey"]!.GetValue<string>(), delivery["idempotencyKey"]!.GetValue<string>());
    }

    [Fact]
    public async Task a_purchase_within_the_hour_cancels_the_reminder()
    {
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Journeys.StartAsync(clock);
        var destination = await server.JourneyWebhookAsync(receiver);
        var journey = await server.CreateJourneyAsync(BrowseAbandonment.Replace("DESTINATION", destination, StringComparison.Ordinal));

        await server.SendAsync("track", """{"userId":"bob","event":"Product Viewed","properties":{"product_id":"p-7"}}""");
        await server.SendAsync("track", """{"userId":"cat","event":"Product Viewed","properties":{"product_id":"p-7"}}""");
        await server.RunReachesAsync(journey, "bob", "wait_for_purchase");
        await server.RunReachesAsync(journey, "cat", "wait_for_purchase");
        await clock.AdvanceAsync(TimeSpan.FromMinutes(30));
        await server.SendAsync("track", """{"userId":"bob","event":"Order Completed","properties":{"revenue":80}}""");
        await server.RunReachesAsync(journey, "bob", "bought", "completed");

        await clock.AdvanceAsync(TimeSpan.FromMinutes(31));
        await Hooks.EventuallyAsync(() => receiver.JourneySends().Count == 1, "cat's reminder");
        await Task.Delay(1000);
        Assert.Equal("cat", receiver.JourneySends().Single()["identifiers"]!["user_id"]!.GetValue<string>());

        var bob = await server.ProfileIdAsync("user_id:bob");
        var runs = await server.GetObjectAsync($"api/profiles/{bob}/journeys");
        var run = runs["items"]!.AsArray().Single()!;
        Assert.Equal("completed", run["position"]!["state"]!.GetValue<string>());
        Assert.Equal("purchased", run["position"]!["reason"]!.GetValue<string>());
        var actions = run["history"]!.AsArray().Select(h => h!["action"]!.GetValue<string>()).ToList();
        Assert.Equal(["entered", "waiting", "event", "completed"], actions);
    }

    [Fact]
    public async Task churn_risk_profiles_get_a_win_back_email_then_a_branch_on_whether_they_bought()
    {
        var marker = "marker-" + Guid.NewGuid().ToString("N");
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Journeys.StartAsync(clock);
        // Customers whose last purchase is more than 90 days old.
        var churnRisk = await server.CreateSegmentAsync("Churn risk", """
            {"and": [{"event": "Order Completed"}, {"not": {"event": "Order Completed", "within": "90d"}}]}
            """);
        var email = await server.CreateDestinationAsync($$$"""
            {"type":"email","smtp":{"host":"{{{Mail.Host}}}","port":{{{Mail.Port}}},"security":"none"},"from":"Shop <news@shop.test>","to":"traits.email",
             "subject":"We miss you, {{ traits.first_name }}","body":"Here is 20% off, {{ traits.first_name }} ({{ journey.name }}). {{{marker}}}"}
            """);
        var crm = await server.JourneyWebhookAsync(receiver);
        var journey = await server.CreateJourneyAsync($$$"""
            {"name": "Win-back",
             "entry": {"segment": "{{{churnRisk}}}"},
             "steps": [
               {"id": "offer", "type": "send", "destination": "{{{email}}}"},
               {"id": "give_them_time", "type": "wait", "duration": "7d"},
               {"id": "bought_again", "type": "branch", "condition": {"event": "Order Completed", "within": "7d"}, "then": "won_back", "else": "flag_lost"},
               {"id": "won_back", "type": "exit", "reason": "won back"},
               {"id": "flag_lost", "type": "send", "destination": "{{{crm}}}"}]}
            """);

        var longAgo = clock.GetUtcNow().AddDays(-100).ToString("O");
        foreach (var (user, name) in new[] { ("dana", "Dana"), ("eli", "Eli") })
        {
            await server.SendAsync("identify", $$$"""{"userId":"{{{user}}}","traits":{"email":"{{{user}}}@example.com","first_name":"{{{name}}}"}}""");
            await server.SendAsync("track", $$$"""{"userId":"{{{user}}}","event":"Order Completed","timestamp":"{{{longAgo}}}","properties":{"revenue":40}}""");
        }

        await Hooks.EventuallyAsync(() => Mail.With(marker).Count == 2, "two win-back emails");
        var dana = Mail.With(marker).Single(m => m.Contains("<dana@example.com>", StringComparison.Ordinal));
        Assert.Contains("Subject: We miss you, Dana", dana, StringComparison.Ordinal);
        Assert.Contains("Here is 20% off, Dana (Win-back).", dana, StringComparison.Ordinal);
        await server.RunReachesAsync(journey, "dana", "give_them_time");

        // Dana buys three days later; Eli does not.
        await clock.AdvanceAsync(TimeSpan.FromDays(3));
        await server.SendAsync("track", """{"userId":"dana","event":"Order Completed","properties":{"revenue":55}}""");
        await Hooks.EventuallyAsync(async () => (await server.GetObjectAsync($"api/segments/{churnRisk}/members"))["count"]!.GetValue<int>() == 1, "Dana to leave the churn audience");

        await clock.AdvanceAsync(TimeSpan.FromDays(4));
        await server.RunReachesAsync(journey, "dana", "won_back", "completed");
        await server.RunReachesAsync(journey, "eli", "flag_lost", "completed");
        await Hooks.EventuallyAsync(() => receiver.JourneySends().Count == 1, "Eli flagged to the CRM");
        Assert.Equal("eli", receiver.JourneySends().Single()["identifiers"]!["user_id"]!.GetValue<string>());
        Assert.Equal(2, Mail.With(marker).Count);

        var counts = (await server.PositionsAsync(journey))["counts"]!;
        Assert.Equal(2, counts["completed"]!.GetValue<long>());
        Assert.Equal(0, counts["active"]!.GetValue<long>());
    }
}
