using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Npgsql;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Storage.Events;
using Tessera.Storage.Postgres;
using Tessera.Testing;
using Xunit.Abstractions;

namespace Tessera.Storage.Tests;

/// <summary>
/// Real <c>tessera serve</c> processes on PostgreSQL, driven over HTTP: what only several processes and a
/// restarting database can show.
/// </summary>
public sealed class PostgresProcessTests(ITestOutputHelper output)
{
    [Fact]
    public async Task two_processes_collecting_the_same_message_ids_at_once_store_every_acknowledged_event_exactly_once()
    {
        var (schema, connectionString) = TestPostgres.NewSchema("procs");
        try
        {
            // Started together: both migrate the empty schema and both ensure the write key's source.
            var started = await Task.WhenAll(
                TesseraProcess.StartServeAsync(TempDirectory.Create("pg-a"), "--store", "postgres", "--postgres", connectionString),
                TesseraProcess.StartServeAsync(TempDirectory.Create("pg-b"), "--store", "postgres", "--postgres", connectionString));
            await using var a = started[0];
            await using var b = started[1];
            using var toA = Client(a.BaseAddress);
            using var toB = Client(b.BaseAddress);

            // Batches overlap by half, and every batch goes to both processes at the same moment.
            var acknowledged = new ConcurrentDictionary<string, bool>();
            var statuses = new ConcurrentBag<HttpStatusCode>();
            await Parallel.ForEachAsync(Enumerable.Range(0, 40), new ParallelOptions { MaxDegreeOfParallelism = 6 }, async (k, _) =>
            {
                var ids = Enumerable.Range(k * 25, 50).Select(i => $"m-{i}").ToArray();
                var answers = await Task.WhenAll(PostAsync(toA, ids), PostAsync(toB, ids));
                foreach (var status in answers)
                {
                    statuses.Add(status);
                    if (status == HttpStatusCode.OK) { foreach (var id in ids) { acknowledged[id] = true; } }
                }
            });

            Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
            await WaitForIndexAsync(a, b);
            var stored = await StoredMessageIdsAsync(connectionString);
            Assert.Equal(stored.Count, stored.Distinct().Count());
            Assert.Subset(stored.ToHashSet(), acknowledged.Keys.ToHashSet());
            Assert.Equal((39 * 25) + 50, stored.Count);
        }
        finally
        {
            await TestPostgres.DropSchemaAsync(schema);
        }
    }

    [Fact]
    public async Task two_processes_receiving_the_same_people_at_once_make_exactly_the_profiles_one_process_would()
    {
        var (schema, connectionString) = TestPostgres.NewSchema("procid");
        try
        {
            var started = await Task.WhenAll(
                TesseraProcess.StartServeAsync(TempDirectory.Create("pgid-a"), "--store", "postgres", "--postgres", connectionString),
                TesseraProcess.StartServeAsync(TempDirectory.Create("pgid-b"), "--store", "postgres", "--postgres", connectionString));
            await using var a = started[0];
            await using var b = started[1];
            using var toA = Client(a.BaseAddress);
            using var toB = Client(b.BaseAddress);

            // 200 people, three messages each (anonymous id + email; user id alone; both), shuffled, half to each process, at once.
            const int people = 200;
            var messages = PostgresStoreTests.PeopleMessages(people);
            var watch = System.Diagnostics.Stopwatch.StartNew();
            await Parallel.ForEachAsync(messages.Chunk(10).Select((chunk, i) => (chunk, i)), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (batch, token) =>
            {
                var body = new StringContent("{\"batch\":[" + string.Join(',', batch.chunk.Select(m => m.Raw)) + "]}", Encoding.UTF8, "application/json");
                using var response = await (batch.i % 2 == 0 ? toA : toB).PostAsync("v1/batch", body, token);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            });
            output.WriteLine($"{messages.Count} messages through two processes in {watch.ElapsedMilliseconds} ms");
            await WaitForIndexAsync(a, b);

            // What one process would make: one engine fed the stored log in seq order.
            await using var reader = new PostgresStore(new PostgresStoreOptions(connectionString) { CatchUpInterval = TimeSpan.Zero }, new ProfileEngine(IdentityRules.Default, ProfileRules.Default));
            await reader.OpenAsync(CancellationToken.None);
            var stored = new List<StoredEvent>();
            for (var query = new EventQuery(Limit: 1000); ;)
            {
                var page = await reader.QueryAsync(query, CancellationToken.None);
                stored.AddRange(page.Items);
                if (page.NextCursor is not { } next) { break; }
                query = query with { Before = next };
            }

            Assert.Equal(messages.Count, stored.Count);
            var single = new ProfileEngine(IdentityRules.Default, ProfileRules.Default);
            var processed = single.Process([.. stored.OrderBy(e => e.Seq).Select(e => (e.Seq, e.Message))]);
            Assert.Equal(processed.ToDictionary(p => p.Seq, p => p.ProfileId), stored.ToDictionary(e => e.Seq, e => e.ProfileId));

            using var adminA = Admin(a.BaseAddress);
            using var adminB = Admin(b.BaseAddress);
            for (var i = 0; i < people; i++)
            {
                var expected = single.FindByIdentifier(new Core.Identity.Identifier("user_id", $"u-{i}"));
                foreach (var identifier in PostgresStoreTests.PersonIdentifiers(i))
                {
                    // Each process answers from its own engine, caught up with the other's appends within a moment:
                    // wait for the whole expected profile (id and traits), since catch-up may land between them.
                    // A trait that never arrives fails the wait, naming what the process still answers.
                    foreach (var admin in new[] { adminA, adminB })
                    {
                        var person = i;
                        var profile = await ProfileWhenAsync(admin, identifier.ToString(), p =>
                            p?["id"]?.GetValue<string>() == expected &&
                            p?["traits"]?["plan"]?.GetValue<string>() == $"plan-{person}" &&
                            p?["traits"]?["first_name"]?.GetValue<string>() == $"F{person}" &&
                            p?["traits"]?["last_name"]?.GetValue<string>() == $"L{person}");
                        var traits = profile!["traits"]!.AsObject();
                        Assert.Equal($"plan-{i}", traits["plan"]!.GetValue<string>());
                        Assert.Equal($"F{i}", traits["first_name"]!.GetValue<string>());
                        Assert.Equal($"L{i}", traits["last_name"]!.GetValue<string>());
                    }
                }
            }

            Assert.Equal(0L, await TestPostgres.ScalarAsync(connectionString, """
                SELECT count(*) FROM (SELECT id_type, id_value FROM identity_changes WHERE kind = 'Linked' GROUP BY 1, 2 HAVING count(DISTINCT profile_id) > 1 OR count(*) > 1) twice
                """));
            Assert.Equal((long)people * 3, await TestPostgres.ScalarAsync(connectionString, "SELECT count(*) FROM identity_changes WHERE kind = 'Linked'"));
        }
        finally
        {
            await TestPostgres.DropSchemaAsync(schema);
        }
    }

    /// <param name="mode"><c>fast</c>: an operator's restart (clients get admin_shutdown); <c>immediate</c>: a crash, then recovery.</param>
    [Theory]
    [InlineData("fast")]
    [InlineData("immediate")]
    public async Task postgres_restart_answers_503_then_recovers_without_losing_acknowledged_events(string mode)
    {
        // A private cluster: stopping the shared one would break every other test using it meanwhile.
        await using var cluster = await PostgresCluster.StartNewAsync();
        // Acknowledging after the store's commit: with the journal on, writes go on being acknowledged while the
        // database is down (the next test).
        await using var tessera = await TesseraProcess.StartServeAsync(TempDirectory.Create("pg-restart"), "--store", "postgres", "--postgres", cluster.ConnectionString, "--no-journal");
        using var client = Client(tessera.BaseAddress);
        using var health = new HttpClient { BaseAddress = tessera.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };

        var acknowledged = new ConcurrentBag<string>();
        var answers = new ConcurrentQueue<(DateTime At, HttpStatusCode Status, bool RetryAfter)>();
        var next = 0;
        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var first = Interlocked.Add(ref next, 20) - 20;
                var ids = Enumerable.Range(first, 20).Select(i => $"r-{i}").ToArray();
                using var response = await client.PostAsync("v1/batch", Body(ids));
                answers.Enqueue((DateTime.UtcNow, response.StatusCode, response.Headers.RetryAfter is not null));
                if (response.StatusCode == HttpStatusCode.OK) { foreach (var id in ids) { acknowledged.Add(id); } }
                await Task.Delay(20);
            }
        })).ToArray();

        await WaitForAsync(() => answers.Count(x => x.Status == HttpStatusCode.OK) >= 10, "acknowledged events before the restart");
        await cluster.StopAsync(mode);
        var down = DateTime.UtcNow;
        await WaitForAsync(() => answers.Any(x => x.At > down && x.Status == HttpStatusCode.ServiceUnavailable), "a 503 while PostgreSQL is down");
        using (var whileDown = await health.GetAsync("health"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, whileDown.StatusCode);
            Assert.NotNull(whileDown.Headers.RetryAfter);
        }

        // Longer than the write-key cache, so source lookups meet the dead store too.
        await Task.Delay(TimeSpan.FromSeconds(6));
        var okWhileDown = answers.Count(x => x.At > down.AddSeconds(1) && x.Status == HttpStatusCode.OK);
        await cluster.StartAsync();
        var up = DateTime.UtcNow;
        await WaitForAsync(() => answers.Any(x => x.At > up && x.Status == HttpStatusCode.OK), "a 200 after PostgreSQL came back");
        Assert.Equal(HttpStatusCode.OK, (await health.GetAsync("health")).StatusCode);
        await WaitForAsync(() => answers.Count(x => x.At > up && x.Status == HttpStatusCode.OK) >= 10, "more acknowledged events after the restart");
        await stop.CancelAsync();
        await Task.WhenAll(load);

        var all = answers.ToArray();
        output.WriteLine($"stop -m {mode}: answers: {all.Count(x => x.Status == HttpStatusCode.OK)} x 200, {all.Count(x => x.Status == HttpStatusCode.ServiceUnavailable)} x 503; reconnected {(all.First(x => x.At > up && x.Status == HttpStatusCode.OK).At - up).TotalMilliseconds:F0} ms after start");
        Assert.Equal(0, okWhileDown);
        Assert.All(all, x => Assert.Contains(x.Status, new[] { HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable }));
        Assert.All(all.Where(x => x.Status == HttpStatusCode.ServiceUnavailable), x => Assert.True(x.RetryAfter, "a 503 without Retry-After"));
        var stored = await StoredMessageIdsAfterRestartAsync(cluster);
        Assert.Equal(stored.Count, stored.Distinct().Count());
        Assert.Subset(stored.ToHashSet(), acknowledged.ToHashSet());
    }

    [Fact]
    public async Task with_the_journal_postgres_down_does_not_stop_acknowledgements_and_every_one_is_indexed_once_it_is_back()
    {
        await using var cluster = await PostgresCluster.StartNewAsync();
        await using var tessera = await TesseraProcess.StartServeAsync(TempDirectory.Create("pg-journal"), "--store", "postgres", "--postgres", cluster.ConnectionString);
        using var client = Client(tessera.BaseAddress);
        using var health = new HttpClient { BaseAddress = tessera.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };

        var acknowledged = new ConcurrentBag<string>();
        var answers = new ConcurrentQueue<(DateTime At, HttpStatusCode Status)>();
        var next = 0;
        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var first = Interlocked.Add(ref next, 20) - 20;
                var ids = Enumerable.Range(first, 20).Select(i => $"j-{i}").ToArray();
                using var response = await client.PostAsync("v1/batch", Body(ids));
                answers.Enqueue((DateTime.UtcNow, response.StatusCode));
                if (response.StatusCode == HttpStatusCode.OK) { foreach (var id in ids) { acknowledged.Add(id); } }
                await Task.Delay(20);
            }
        })).ToArray();

        await WaitForAsync(() => answers.Count(x => x.Status == HttpStatusCode.OK) >= 10, "acknowledged events before the stop");
        await cluster.StopAsync("immediate");
        var down = DateTime.UtcNow;
        await Task.Delay(TimeSpan.FromSeconds(4));
        using (var whileDown = await health.GetAsync("health"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, whileDown.StatusCode);
        }

        var okWhileDown = answers.Count(x => x.At > down.AddSeconds(1) && x.Status == HttpStatusCode.OK);
        await cluster.StartAsync();
        for (var deadline = DateTime.UtcNow.AddSeconds(45); ; await Task.Delay(100))
        {
            using var answer = await health.GetAsync("health");
            if (answer.StatusCode == HttpStatusCode.OK) { break; }
            if (DateTime.UtcNow > deadline) { throw new TimeoutException("waited 45 s for health after PostgreSQL came back"); }
        }

        await stop.CancelAsync();
        await Task.WhenAll(load);
        await WaitForIndexAsync(tessera);

        output.WriteLine($"journal: {answers.Count(x => x.Status == HttpStatusCode.OK)} x 200 ({okWhileDown} while PostgreSQL was down), {answers.Count(x => x.Status != HttpStatusCode.OK)} other");
        Assert.True(okWhileDown > 0, "with the journal, requests should go on being acknowledged while the database is down");
        Assert.All(answers, x => Assert.Equal(HttpStatusCode.OK, x.Status));
        var stored = await StoredMessageIdsAfterRestartAsync(cluster);
        Assert.Equal(stored.Count, stored.Distinct().Count());
        Assert.Subset(stored.ToHashSet(), acknowledged.ToHashSet());
    }

    /// <summary>
    /// A 200 means "in the process's journal"; a read through its API waits until its store has caught up. Tests that
    /// then look at the database directly go through that barrier first.
    /// </summary>
    private static async Task WaitForIndexAsync(params TesseraProcess[] processes)
    {
        foreach (var process in processes)
        {
            using var admin = Admin(process.BaseAddress);
            using var response = await admin.GetAsync("api/stats");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    private static HttpClient Client(Uri baseAddress)
    {
        var client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(TestServer.WriteKey + ":")));
        return client;
    }

    private static HttpClient Admin(Uri baseAddress)
    {
        var client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TestServer.AdminToken);
        return client;
    }

    /// <summary>GET /api/profiles?identifier= until <paramref name="done"/> holds (10 s at most), then the last answer.</summary>
    private static async Task<JsonObject?> ProfileWhenAsync(HttpClient admin, string identifier, Func<JsonObject?, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            using var response = await admin.GetAsync($"api/profiles?identifier={Uri.EscapeDataString(identifier)}");
            var profile = response.StatusCode == HttpStatusCode.NotFound ? null : await response.Content.ReadFromJsonAsync<JsonObject>();
            if (done(profile)) { return profile; }
            if (DateTime.UtcNow > deadline) { Assert.Fail($"{identifier}: after 10 s the process still answers {profile?.ToJsonString() ?? "404"}"); }
            await Task.Delay(100);
        }
    }

    private static StringContent Body(IEnumerable<string> messageIds) => new(
        "{\"batch\":[" + string.Join(',', messageIds.Select(id => $$"""{"type":"track","event":"E","userId":"u","messageId":"{{id}}"}""")) + "]}",
        Encoding.UTF8,
        "application/json");

    private static async Task<HttpStatusCode> PostAsync(HttpClient client, string[] ids)
    {
        using var response = await client.PostAsync("v1/batch", Body(ids));
        return response.StatusCode;
    }

    /// <summary>
    /// The message ids in the cluster's events table, read after a stop and start of it: the test's own connection is
    /// new (no pool), and a read that the server breaks off is said, with the server's log, and tried once more (CI
    /// once saw one end mid-read after the restart, with every acknowledgement in; the log says why next time).
    /// </summary>
    private async Task<List<string>> StoredMessageIdsAfterRestartAsync(PostgresCluster cluster)
    {
        var connectionString = new NpgsqlConnectionStringBuilder(cluster.ConnectionString) { Pooling = false }.ConnectionString;
        try
        {
            return await StoredMessageIdsAsync(connectionString);
        }
        catch (NpgsqlException e)
        {
            output.WriteLine($"reading the stored ids failed ({e.Message}: {e.InnerException?.Message}); the server's log:\n{cluster.LogTail()}");
            await Task.Delay(TimeSpan.FromSeconds(1));
            return await StoredMessageIdsAsync(connectionString);
        }
    }

    private static async Task<List<string>> StoredMessageIdsAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT message_id FROM events", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var ids = new List<string>();
        while (await reader.ReadAsync()) { ids.Add(reader.GetString(0)); }
        return ids;
    }

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(45);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) { throw new TimeoutException($"waited 45 s for {what}"); }
            await Task.Delay(50);
        }
    }
}
