using System.Collections.Concurrent;
using System.Net;
using Tessera.Testing;

namespace Tessera.Process.Tests;

/// <summary>A 200 means durable: acknowledged events survive kill -9; SIGTERM drains in-flight work and exits 0.</summary>
public sealed class DurabilityTests
{
    [Fact]
    public async Task every_acknowledged_event_survives_kill_minus_9()
    {
        var dataDir = TempDirectory.Create("kill9");
        var acknowledged = new ConcurrentBag<string>();
        await using (var tessera = await TesseraProcess.StartServeAsync(dataDir))
        {
            using var client = Http.Collect(tessera.BaseAddress);
            using var stop = new CancellationTokenSource();
            // Four senders keep batches in flight; the kill lands in the middle of them.
            var senders = Enumerable.Range(0, 4).Select(s => Task.Run(async () =>
            {
                for (var b = 0; !stop.IsCancellationRequested; b++)
                {
                    var ids = Enumerable.Range(0, 50).Select(i => $"k9-{s}-{b}-{i}").ToList();
                    try
                    {
                        var response = await client.PostAsync("v1/batch", Http.Batch(ids));
                        if (response.StatusCode == HttpStatusCode.OK) { foreach (var id in ids) { acknowledged.Add(id); } }
                    }
                    catch (HttpRequestException)
                    {
                        return; // the server is gone: this batch was never acknowledged
                    }
                }
            })).ToList();

            await Task.Delay(1500);
            await tessera.KillHardAsync();
            await stop.CancelAsync();
            await Task.WhenAll(senders);
        }

        Assert.True(acknowledged.Count > 500, $"only {acknowledged.Count} events were acknowledged before the kill; the test needs load in flight");
        await using var restarted = await TesseraProcess.StartServeAsync(dataDir);
        using var admin = Http.Admin(restarted.BaseAddress);
        var stored = await Http.StoredMessageIdsAsync(admin);
        var lost = acknowledged.Where(id => !stored.Contains(id)).ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} acknowledged events were lost, e.g. {string.Join(", ", lost.Take(5))}");
    }

    [Fact]
    public async Task after_kill_minus_9_the_stored_profiles_are_exactly_a_replay_of_the_stored_events()
    {
        var dataDir = TempDirectory.Create("kill9-profiles");
        await using (var tessera = await TesseraProcess.StartServeAsync(dataDir))
        {
            using var client = Http.Collect(tessera.BaseAddress);
            using var stop = new CancellationTokenSource();
            // Each person browses anonymously, then signs up with an email, then logs in: links and merges in flight.
            var senders = Enumerable.Range(0, 3).Select(s => Task.Run(async () =>
            {
                for (var b = 0; !stop.IsCancellationRequested; b++)
                {
                    var person = $"{s}-{b}";
                    var body = $$"""
                        {"batch":[
                          {"type":"page","anonymousId":"a-{{person}}","name":"Home"},
                          {"type":"identify","anonymousId":"a-{{person}}","traits":{"email":"p{{person}}@example.com","n":{{b}} } },
                          {"type":"identify","userId":"u-{{person}}","traits":{"email":"p{{person}}@example.com"} },
                          {"type":"track","userId":"u-{{(b > 0 ? $"{s}-{b - 1}" : person)}}","anonymousId":"a-{{person}}","event":"Shared Device"}
                        ]}
                        """;
                    try
                    {
                        await client.PostAsync("v1/batch", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
                    }
                    catch (HttpRequestException)
                    {
                        return;
                    }
                }
            })).ToList();

            await Task.Delay(1500);
            await tessera.KillHardAsync();
            await stop.CancelAsync();
            await Task.WhenAll(senders);
        }

        await using var restarted = await TesseraProcess.StartServeAsync(dataDir);
        using var admin = Http.Admin(restarted.BaseAddress);
        var stats = (await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<System.Text.Json.Nodes.JsonObject>(admin, "api/stats"))!;
        Assert.True(stats["events"]!.GetValue<long>() > 100, "the test needs events stored before the kill");
        var response = await System.Net.Http.Json.HttpClientJsonExtensions.PostAsJsonAsync(admin, "api/identity/reresolve", new { dryRun = true });
        var report = (await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<System.Text.Json.Nodes.JsonObject>(response.Content))!;
        Assert.Equal(0, report["profilesMerging"]!.GetValue<int>());
        Assert.Equal(0, report["profilesSplitting"]!.GetValue<int>());
        Assert.Equal(0, report["identifiersMoved"]!.GetValue<int>());
        Assert.Equal(stats["profiles"]!.GetValue<long>(), report["profilesAfter"]!.GetValue<long>());
    }

    [Fact]
    public async Task sigterm_finishes_in_flight_requests_flushes_and_exits_0()
    {
        var dataDir = TempDirectory.Create("sigterm");
        var acknowledged = new ConcurrentBag<string>();
        int exitCode;
        await using (var tessera = await TesseraProcess.StartServeAsync(dataDir))
        {
            using var client = Http.Collect(tessera.BaseAddress);
            var senders = Enumerable.Range(0, 4).Select(s => Task.Run(async () =>
            {
                for (var b = 0; b < 10_000; b++)
                {
                    var ids = Enumerable.Range(0, 50).Select(i => $"term-{s}-{b}-{i}").ToList();
                    try
                    {
                        var response = await client.PostAsync("v1/batch", Http.Batch(ids));
                        if (response.StatusCode == HttpStatusCode.OK) { foreach (var id in ids) { acknowledged.Add(id); } }
                        else { return; }
                    }
                    catch (HttpRequestException)
                    {
                        return;
                    }
                }
            })).ToList();

            await Task.Delay(1500);
            exitCode = await tessera.TerminateAsync(TimeSpan.FromSeconds(60));
            await Task.WhenAll(senders);
        }

        Assert.Equal(0, exitCode);
        Assert.NotEmpty(acknowledged);
        await using var restarted = await TesseraProcess.StartServeAsync(dataDir);
        using var admin = Http.Admin(restarted.BaseAddress);
        var stored = await Http.StoredMessageIdsAsync(admin);
        Assert.All(acknowledged, id => Assert.Contains(id, stored));
    }
}
