using Tessera.Testing;

namespace Tessera.Activation.Tests;

/// <summary>Several Tessera processes on one PostgreSQL share the outbox: each delivery is derived once and sent once.</summary>
public sealed class SharedPostgresTests
{
    [Fact]
    public async Task two_servers_on_one_postgresql_send_each_delivery_exactly_once()
    {
        var (schema, connectionString) = TestPostgres.NewSchema("act");
        try
        {
            await using var receiver = await Receiver.StartAsync();
            void Shared(Tessera.Server.Hosting.TesseraOptions o)
            {
                o.Store = "postgres";
                o.Postgres = connectionString;
                Activation.Fast(o.Activation);
            }

            await using var a = await TestServer.StartAsync(configure: Shared);
            await using var b = await TestServer.StartAsync(configure: Shared);
            var segment = await a.CreateSegmentAsync("Tickers", """{"event":"Tick"}""");
            var destination = await a.CreateDestinationAsync(Activation.Webhook(receiver, segments: $"[\"{segment}\"]", events: """["Tick"]"""));

            for (var i = 0; i < 40; i++)
            {
                await (i % 2 == 0 ? a : b).SendAsync("track", $$$"""{"userId":"t-{{{i % 20}}}","event":"Tick","properties":{"i":{{{i}}}}}""");
            }

            // 40 events and 20 entries (each user enters once, on its first tick), whichever server took the event.
            await Activation.EventuallyAsync(() => receiver.Delivered().Count >= 60, "60 deliveries", seconds: 30);
            await Task.Delay(1500);
            Assert.Equal(60, receiver.Requests.Count);
            Assert.Equal(60, receiver.Requests.Select(r => r.Header("Idempotency-Key")).Distinct().Count());
            Assert.Equal(20, receiver.Delivered().Count(d => d["type"]!.GetValue<string>() == "audience_entered"));
            Assert.Equal(40, receiver.Delivered().Where(d => d["type"]!.GetValue<string>() == "event").Select(d => d["message"]!["properties"]!["i"]!.GetValue<int>()).Distinct().Count());
            await Activation.EventuallyAsync(async () => (await b.GetObjectAsync($"api/destinations/{destination}/deliveries?status=delivered&limit=100"))["items"]!.AsArray().Count == 60, "both servers to show 60 delivered");
        }
        finally
        {
            await TestPostgres.DropSchemaAsync(schema);
        }
    }
}
