using System.Net;
using Tessera.Activation.Tests;
using Hooks = Tessera.Activation.Tests.Activation;

namespace Tessera.Journeys.Tests;

/// <summary>Re-entry, exit triggers, pausing and editing a live journey.</summary>
public sealed class JourneyRulesTests
{
    private static string WaitThenSend(string destination, string entry = """{"event": "Signed Up"}""", string extra = "") => $$$"""
        {"name": "Onboarding", "entry": {{{entry}}}{{{extra}}},
         "steps": [{"id": "pause", "type": "wait", "duration": "1d"}, {"id": "hello", "type": "send", "destination": "{{{destination}}}"}]}
        """;

    [Fact]
    public async Task a_profile_enters_once_by_default_even_after_its_run_ended()
    {
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Journeys.StartAsync(clock);
        var journey = await server.CreateJourneyAsync(WaitThenSend(await server.JourneyWebhookAsync(receiver)));

        await server.SendAsync("track", """{"userId":"fay","event":"Signed Up"}""");
        await server.RunReachesAsync(journey, "fay", "pause");
        await server.SendAsync("track", """{"userId":"fay","event":"Signed Up"}""");
        await clock.AdvanceAsync(TimeSpan.FromDays(1));
        await server.RunReachesAsync(journey, "fay", "hello", "completed");
        await server.SendAsync("track", """{"userId":"fay","event":"Signed Up"}""");
        await Task.Delay(1500);

        Assert.Single(await server.RunsAsync(journey));
        await Hooks.EventuallyAsync(() => receiver.JourneySends().Count == 1, "one send");
    }

    [Fact]
    public async Task re_entry_after_a_period_starts_a_new_run_with_its_own_send()
    {
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Journeys.StartAsync(clock);
        var journey = await server.CreateJourneyAsync(WaitThenSend(await server.JourneyWebhookAsync(receiver), extra: """, "reentry": {"allowed": true, "after": "3d"}"""));

        await server.SendAsync("track", """{"userId":"gus","event":"Signed Up"}""");
        await server.RunReachesAsync(journey, "gus", "pause");
        // In the journey already: a second entry while the first run is active is ignored.
        await server.SendAsync("track", """{"userId":"gus","event":"Signed Up"}""");
        await clock.AdvanceAsync(TimeSpan.FromDays(1));
        await server.RunReachesAsync(journey, "gus", "hello", "completed");
        // Ended, but within 3 days of the entry: not yet.
        await server.SendAsync("track", """{"userId":"gus","event":"Signed Up"}""");
        await Task.Delay(1000);
        Assert.Single(await server.RunsAsync(journey));

        await clock.AdvanceAsync(TimeSpan.FromDays(2));
        await server.SendAsync("track", """{"userId":"gus","event":"Signed Up"}""");
        await server.RunReachesAsync(journey, "gus", "pause", run: 2);
        await clock.AdvanceAsync(TimeSpan.FromDays(1));
        await server.RunReachesAsync(journey, "gus", "hello", "completed", run: 2);
        await Hooks.EventuallyAsync(() => receiver.JourneySends().Count == 2, "one send per run");
        var keys = receiver.JourneySends().Select(s => s["idempotencyKey"]!.GetValue<string>()).Distinct().ToList();
        Assert.Equal(2, keys.Count);
        Assert.Equal([1, 2], receiver.JourneySends().Select(s => s["journey"]!["run"]!.GetValue<int>()).Order());
    }

    [Fact]
    public async Task an_exit_event_takes_the_profile_out_wherever_it_is()
    {
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Journeys.StartAsync(clock);
        var journey = await server.CreateJourneyAsync(WaitThenSend(await server.JourneyWebhookAsync(receiver),
            extra: """, "exit": [{"event": "Unsubscribed", "where": [{"property": "list", "op": "eq", "value": "all"}]}]"""));

        await server.SendAsync("track", """{"userId":"hal","event":"Signed Up"}""");
        await server.SendAsync("track", """{"userId":"ivy","event":"Signed Up"}""");
        await server.RunReachesAsync(journey, "hal", "pause");
        await server.RunReachesAsync(journey, "ivy", "pause");
        await server.SendAsync("track", """{"userId":"hal","event":"Unsubscribed","properties":{"list":"all"}}""");
        await server.SendAsync("track", """{"userId":"ivy","event":"Unsubscribed","properties":{"list":"weekly"}}""");
        await server.RunReachesAsync(journey, "hal", "pause", "exited");

        await clock.AdvanceAsync(TimeSpan.FromDays(1));
        await Hooks.EventuallyAsync(() => receiver.JourneySends().Count == 1, "ivy's send");
        await Task.Delay(1000);
        Assert.Equal("ivy", receiver.JourneySends().Single()["identifiers"]!["user_id"]!.GetValue<string>());
        var hal = (await server.RunsAsync(journey)).Single(r => r["state"]!.GetValue<string>() == "exited");
        Assert.Equal("did Unsubscribed", hal["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task leaving_the_entry_audience_exits_the_journey()
    {
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Journeys.StartAsync(clock);
        var trial = await server.CreateSegmentAsync("On trial", """{"trait": "plan", "op": "eq", "value": "trial"}""");
        var journey = await server.CreateJourneyAsync(WaitThenSend(await server.JourneyWebhookAsync(receiver), entry: $$$"""{"segment": "{{{trial}}}"}""",
            extra: $$$""", "exit": [{"leftSegment": "{{{trial}}}"}]"""));

        await server.SendAsync("identify", """{"userId":"jo","traits":{"plan":"trial"}}""");
        await server.RunReachesAsync(journey, "jo", "pause");
        await server.SendAsync("identify", """{"userId":"jo","traits":{"plan":"paid"}}""");
        await server.RunReachesAsync(journey, "jo", "pause", "exited");
        await clock.AdvanceAsync(TimeSpan.FromDays(2));
        await Task.Delay(1000);
        Assert.Empty(receiver.JourneySends());
        Assert.Equal($"left audience {trial}", (await server.RunsAsync(journey)).Single()["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task a_paused_journey_admits_nobody_and_holds_its_runs_until_enabled()
    {
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Journeys.StartAsync(clock);
        var journey = await server.CreateJourneyAsync(WaitThenSend(await server.JourneyWebhookAsync(receiver)));
        await server.SendAsync("track", """{"userId":"kim","event":"Signed Up"}""");
        await server.RunReachesAsync(journey, "kim", "pause");

        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"api/journeys/{journey}/pause", null)).StatusCode);
        await server.SendAsync("track", """{"userId":"lou","event":"Signed Up"}""");
        await clock.AdvanceAsync(TimeSpan.FromDays(2));
        await Task.Delay(1000);
        Assert.Empty(receiver.JourneySends());
        Assert.Single(await server.RunsAsync(journey));

        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"api/journeys/{journey}/enable", null)).StatusCode);
        await server.RunReachesAsync(journey, "kim", "hello", "completed");
        await Hooks.EventuallyAsync(() => receiver.JourneySends().Count == 1, "kim's send once enabled");
        // Lou did sign up, but while the journey was paused: entries count from when it is enabled.
        Assert.Single(await server.RunsAsync(journey));
    }

    [Fact]
    public async Task editing_a_live_journey_keeps_runs_under_way_on_their_version()
    {
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Journeys.StartAsync(clock);
        var destination = await server.JourneyWebhookAsync(receiver);
        var journey = await server.CreateJourneyAsync(WaitThenSend(destination));
        await server.SendAsync("track", """{"userId":"max","event":"Signed Up"}""");
        await server.RunReachesAsync(journey, "max", "pause");

        // Version 2 removes the step Max is waiting at.
        var response = await server.Admin.PutAsync($"api/journeys/{journey}", Hooks.Json($$$"""
            {"name": "Onboarding v2", "entry": {"event": "Signed Up"},
             "steps": [{"id": "soon", "type": "wait", "duration": "2h"}, {"id": "hi", "type": "send", "destination": "{{{destination}}}"}]}
            """));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, (await server.GetObjectAsync($"api/journeys/{journey}"))["version"]!.GetValue<int>());
        await server.SendAsync("track", """{"userId":"ned","event":"Signed Up"}""");
        await server.RunReachesAsync(journey, "ned", "soon");

        await clock.AdvanceAsync(TimeSpan.FromDays(1));
        await server.RunReachesAsync(journey, "max", "hello", "completed");
        await server.RunReachesAsync(journey, "ned", "hi", "completed");
        await Hooks.EventuallyAsync(() => receiver.JourneySends().Count == 2, "both sends");
        var steps = receiver.JourneySends().ToDictionary(s => s["identifiers"]!["user_id"]!.GetValue<string>(), s => (s["journey"]!["step"]!.GetValue<string>(), s["journey"]!["version"]!.GetValue<int>()));
        Assert.Equal(("hello", 1), steps["max"]);
        Assert.Equal(("hi", 2), steps["ned"]);
    }

    [Fact]
    public async Task positions_show_who_is_at_which_step_and_deleting_exits_them()
    {
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Journeys.StartAsync(clock);
        var journey = await server.CreateJourneyAsync(WaitThenSend(await server.JourneyWebhookAsync(receiver)));
        foreach (var user in new[] { "o1", "o2", "o3" }) { await server.SendAsync("track", $$$"""{"userId":"{{{user}}}","event":"Signed Up"}"""); }
        await Hooks.EventuallyAsync(async () => (await server.PositionsAsync(journey))["counts"]!["active"]!.GetValue<long>() == 3, "three runs");

        var answer = await server.PositionsAsync(journey, "?step=pause&limit=2");
        Assert.Equal(3, answer["counts"]!["activeByStep"]!["pause"]!.GetValue<long>());
        Assert.Equal(2, answer["items"]!.AsArray().Count);
        Assert.NotNull(answer["nextCursor"]);
        Assert.All(answer["items"]!.AsArray(), i => Assert.True(i!["waiting"]!.GetValue<bool>()));

        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync($"api/journeys/{journey}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.GetAsync($"api/journeys/{journey}")).StatusCode);
        var o1 = await server.ProfileIdAsync("user_id:o1");
        var run = (await server.GetObjectAsync($"api/profiles/{o1}/journeys"))["items"]!.AsArray().Single()!;
        Assert.Equal("exited", run["position"]!["state"]!.GetValue<string>());
        Assert.Equal("journey deleted", run["position"]!["reason"]!.GetValue<string>());
        await clock.AdvanceAsync(TimeSpan.FromDays(2));
        await Task.Delay(500);
        Assert.Empty(receiver.JourneySends());
    }
}
