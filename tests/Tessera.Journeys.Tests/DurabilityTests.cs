using Microsoft.Extensions.Time.Testing;
using Tessera.Activation.Tests;
using Hooks = Tessera.Activation.Tests.Activation;

namespace Tessera.Journeys.Tests;

/// <summary>Positions are stored: a wait survives a restart, and processes sharing PostgreSQL never move one run twice.</summary>
public sealed class DurabilityTests
{
    [Fact]
    public async Task a_wait_under_way_completes_after_a_restart()
    {
        var dataDir = Testing.TempDirectory.Create("tessera-journeys");
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        string journey;
        await using (var first = await Journeys.StartAsync(clock, dataDir))
        {
            var destination = await first.JourneyWebhookAsync(receiver);
            journey = await first.CreateJourneyAsync($$$"""
                {"name": "Reminder", "entry": {"event": "Cart Abandoned"},
                 "steps": [{"id": "wait", "type": "wait", "duration": "1h"}, {"id": "remind", "type": "send", "destination": "{{{destination}}}"}]}
                """);
            await first.SendAsync("track", """{"userId":"pat","event":"Cart Abandoned","properties":{"cart":"c-1"}}""");
            await first.RunReachesAsync(journey, "pat", "wait");
            await clock.AdvanceAsync(TimeSpan.FromMinutes(20));
        }

        // Down for 50 minutes of the server's time: the wait's end passes while nothing runs.
        await clock.AdvanceAsync(TimeSpan.FromMinutes(50));
        await using var second = await Journeys.StartAsync(clock, dataDir);
        await second.RunReachesAsync(journey, "pat", "remind", "completed");
        await Hooks.EventuallyAsync(() => receiver.JourneySends().Count == 1, "the reminder after the restart");
        Assert.Equal("c-1", receiver.JourneySends()[0]["entry"]!["event"]!["properties"]!["cart"]!.GetValue<string>());
    }

    [Fact]
    public async Task two_servers_on_one_postgresql_move_each_run_once()
    {
        var (schema, connectionString) = Testing.TestPostgres.NewSchema("jrn");
        try
        {
            // Each server has its own clock, as each process would; both are moved together.
            var clockA = Journeys.NewClock();
            var clockB = new FakeTimeProvider(clockA.GetUtcNow());
            void Shared(Server.Hosting.TesseraOptions o)
            {
                o.Store = "postgres";
                o.Postgres = connectionString;
            }

            await using var receiver = await Receiver.StartAsync();
            await using var a = await Journeys.StartAsync(clockA, configure: Shared);
            await using var b = await Journeys.StartAsync(clockB, configure: Shared);
            var destination = await a.JourneyWebhookAsync(receiver);
            var journey = await a.CreateJourneyAsync($$$"""
                {"name": "Shared", "entry": {"event": "Tick"},
                 "steps": [{"id": "hello", "type": "send", "destination": "{{{destination}}}"}, {"id": "wait", "type": "wait", "duration": "1h"},
                           {"id": "again", "type": "send", "destination": "{{{destination}}}"}]}
                """);
            for (var i = 0; i < 60; i++)
            {
                await (i % 2 == 0 ? a : b).SendAsync("track", $$$"""{"userId":"t-{{{i % 30}}}","event":"Tick"}""");
            }

            await Hooks.EventuallyAsync(async () => (await a.PositionsAsync(journey))["counts"]!["activeByStep"]?["wait"]?.GetValue<long>() == 30, "30 runs waiting", seconds: 30);
            // The first sends are done before the clocks jump: a claim's lease is on the server's clock, and an hour's jump
            // ends the lease of a send still in flight, which the other server would then take and send again.
            await Hooks.EventuallyAsync(async () => (await a.DeliveriesAsync(destination, "delivered")).Count == 30, "30 first sends done", seconds: 30);
            clockA.Advance(TimeSpan.FromHours(1));
            clockB.Advance(TimeSpan.FromHours(1));
            await Hooks.EventuallyAsync(async () => (await b.PositionsAsync(journey))["counts"]!["completed"]!.GetValue<long>() == 30, "30 runs completed", seconds: 30);
            await Hooks.EventuallyAsync(() => receiver.JourneySends().Count >= 60, "60 sends", seconds: 30);
            await Task.Delay(1500);
            Assert.Equal(60, receiver.Requests.Count);
            Assert.Equal(60, receiver.JourneySends().Select(s => s["idempotencyKey"]!.GetValue<string>()).Distinct().Count());
            Assert.Equal(30, (await a.RunsAsync(journey)).Count);
        }
        finally
        {
            await Testing.TestPostgres.DropSchemaAsync(schema);
        }
    }
}
