using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Tessera.Storage.Events;
using Tessera.Testing;

namespace Tessera.Collection.Tests;

/// <summary>
/// A 200 means "in the journal"; the store follows behind. What a client must still see: its own writes on every
/// read, a 503 with Retry-After (never a silent drop) when the store falls too far behind, duplicates stored once.
/// The store is held behind on purpose with <c>IndexerDelay</c>.
/// </summary>
public sealed class JournalTests
{
    [Fact]
    public async Task a_read_right_after_a_write_sees_it_while_the_store_lags_the_journal()
    {
        // Long enough that the write's answer and the health read come first even on a loaded machine (700 ms was not, at load 11).
        await using var server = await TestServer.StartAsync(configure: o => o.IndexerDelay = TimeSpan.FromMilliseconds(2000));

        var sent = await server.Collect.PostJsonAsync("v1/batch", Api.Batch(
            """{"type":"identify","messageId":"ryw-1","userId":"ryw-user","traits":{"email":"ryw@example.com","plan":"pro"}}""",
            Api.Track("ryw-2", userId: "ryw-user")));
        var behind = (await server.Anonymous.GetFromJsonAsync<JsonObject>("health"))!["journal"]!["behindBytes"]!.GetValue<long>();
        var events = await server.Admin.EventsAsync("userId=ryw-user");
        var profile = await server.Admin.GetFromJsonAsync<JsonObject>("api/profiles?identifier=email:ryw@example.com");

        Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        Assert.True(behind > 0, "the store should still have been behind the journal when the write was answered");
        Assert.Equal(["ryw-2", "ryw-1"], events.Select(e => e["messageId"]!.GetValue<string>()));
        Assert.Equal("pro", profile!["traits"]!["plan"]!.GetValue<string>());
        Assert.Equal(2, await server.Admin.EventCountAsync());
    }

    /// <summary>
    /// Under load the embedded store holds its transaction open for a bulk commit (seconds); a read that wants what was
    /// acknowledged asks it to commit now instead of waiting for the bulk. Here the bulk would take hours at this rate,
    /// and the read barrier gives up after 5 s. (On PostgreSQL, which holds nothing open, the read is answered all the same.)
    /// </summary>
    [Fact]
    public async Task a_read_gets_what_the_store_held_open_for_a_bulk_commit_without_waiting_for_the_bulk()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o.DuckDbBulkCommitEvents = 1_000_000;
            o.DuckDbBulkCommitWindow = TimeSpan.FromHours(100);
            o.ReadBarrierTimeout = TimeSpan.FromSeconds(5);
        });

        var sent = await server.Collect.PostJsonAsync("v1/batch", Api.Batch([.. Enumerable.Range(0, 100).Select(i => Api.Track($"bulk-{i}", userId: "bulk-user"))]));
        Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        await Task.Delay(500);
        var behind = (await server.Anonymous.GetFromJsonAsync<JsonObject>("health"))!["journal"]!["behindBytes"]!.GetValue<long>();
        var events = await server.Admin.GetAsync("api/events?userId=bulk-user&limit=1000");

        if (server.Options.Store == "duckdb")
        {
            // PostgreSQL commits each of the indexer's chunks in its call: nothing is held there.
            Assert.True(behind > 0, "the store was expected to hold the events in its open transaction");
        }

        Assert.Equal(HttpStatusCode.OK, events.StatusCode);
        Assert.Equal(100, (await events.ReadObjectAsync())["items"]!.AsArray().Count);
    }

    [Fact]
    public async Task a_resent_message_gets_200_and_is_stored_once_even_before_the_first_copy_is_indexed()
    {
        await using var server = await TestServer.StartAsync(configure: o => o.IndexerDelay = TimeSpan.FromMilliseconds(300));

        var first = await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("resent-1"), Api.Track("resent-2")));
        var again = await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("resent-1")));
        var third = await server.Collect.PostJsonAsync("v1/track", """{"userId":"u-1","event":"E","messageId":"resent-2"}""");

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK], new[] { first.StatusCode, again.StatusCode, third.StatusCode });
        Assert.Equal("""{"success":true}""", await again.Content.ReadAsStringAsync());
        Assert.Equal(["resent-2", "resent-1"], (await server.Admin.EventsAsync()).Select(e => e["messageId"]!.GetValue<string>()));
    }

    [Fact]
    public async Task past_the_backlog_bound_a_request_waits_then_gets_503_with_retry_after_and_nothing_of_it_is_stored()
    {
        var dataDir = TempDirectory.Create("backpressure");
        await using (var server = await TestServer.StartAsync(dataDir, o =>
        {
            o.IndexerDelay = TimeSpan.FromMinutes(5);
            o.MaxIndexBacklogBytes = 1;
            o.BackPressureTimeout = TimeSpan.FromMilliseconds(400);
        }))
        {
            var first = await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("bp-1")));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var refused = await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("bp-2")));
            var waited = clock.Elapsed;

            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.NotNull(refused.Headers.RetryAfter);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            var problem = await refused.ReadObjectAsync();
            Assert.Contains("nothing was stored", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Contains("behind", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.True(waited >= TimeSpan.FromMilliseconds(350), $"answered after {waited.TotalMilliseconds:F0} ms; it should have waited for room first");
        }

        // Stopping drained the journal into the store; the refused request left nothing behind.
        await using var restarted = await TestServer.StartAsync(dataDir);
        Assert.Equal(["bp-1"], (await restarted.Admin.EventsAsync()).Select(e => e["messageId"]!.GetValue<string>()));
    }

    [Fact]
    public async Task a_read_the_store_cannot_catch_up_with_in_time_gets_503_with_retry_after()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o.IndexerDelay = TimeSpan.FromMinutes(5);
            o.ReadBarrierTimeout = TimeSpan.FromMilliseconds(300);
        });
        Assert.Equal(HttpStatusCode.OK, (await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("slow-1")))).StatusCode);

        var events = await server.Admin.GetAsync("api/events");
        var stats = await server.Admin.GetAsync("api/stats");
        var profile = await server.Admin.GetAsync("api/profiles?identifier=user_id:u-1");
        var sources = await server.Admin.GetAsync("api/sources");

        Assert.All(new[] { events, stats, profile }, r =>
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
            Assert.NotNull(r.Headers.RetryAfter);
            Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        });
        Assert.Contains("not yet caught up", (await events.ReadObjectAsync())["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        // Sources are not filled from the journal, so they do not wait for it.
        Assert.Equal(HttpStatusCode.OK, sources.StatusCode);
    }

    [Fact]
    public async Task a_record_damaged_on_disk_while_running_stops_the_indexer_there_health_says_so_and_new_events_get_503()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o.IndexerDelay = TimeSpan.FromSeconds(2);
            o.ReadBarrierTimeout = TimeSpan.FromMilliseconds(300);
        });
        Assert.Equal(HttpStatusCode.OK, (await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("dmg-1")))).StatusCode);
        await Task.Delay(300); // the indexer has taken the first record and waits out its delay
        var segment = Directory.GetFiles(server.Options.JournalPath, "*.tjl").Single();
        var secondAt = new FileInfo(segment).Length;
        Assert.Equal(HttpStatusCode.OK, (await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("dmg-2")))).StatusCode);
        await using (var file = new FileStream(segment, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            file.Position = secondAt + 40;
            var b = file.ReadByte();
            file.Position = secondAt + 40;
            file.WriteByte((byte)(b ^ 0xFF));
        }

        HttpResponseMessage health;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((health = await server.Anonymous.GetAsync("health")).StatusCode == HttpStatusCode.OK && DateTime.UtcNow < deadline) { await Task.Delay(100); }
        var read = await server.Admin.GetAsync("api/events");
        var refused = await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("dmg-3")));
        var stored = await server.Store.QueryAsync(new EventQuery(Limit: 10), CancellationToken.None);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        var detail = (await health.ReadObjectAsync())["detail"]!.GetValue<string>();
        Assert.Contains("journal indexer stopped", detail, StringComparison.Ordinal);
        Assert.Contains($"{segment}: the record at offset {secondAt}", detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, read.StatusCode);
        // The journal is closed once its indexer stopped: events are refused, saying why, not failed with a 500.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        // It waits for a restart, so it says so as /health does: not "try again in a second".
        Assert.Equal(TimeSpan.FromSeconds(30), refused.Headers.RetryAfter?.Delta);
        Assert.Equal(TimeSpan.FromSeconds(30), health.Headers.RetryAfter?.Delta);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        var refusal = (await refused.ReadObjectAsync())["detail"]!.GetValue<string>();
        Assert.Contains("journal indexer stopped", refusal, StringComparison.Ordinal);
        Assert.Contains("until it is restarted", refusal, StringComparison.Ordinal);
        // The record before the damage was indexed; the damaged one was not skipped over, nor anything after it.
        Assert.Equal(["dmg-1"], stored.Items.Select(e => e.Message.MessageId));
    }

    [Fact]
    public async Task with_the_journal_off_a_200_means_the_store_has_committed_the_events()
    {
        await using var server = await TestServer.StartAsync(configure: o => o.Journal = false);

        var sent = await server.Collect.PostJsonAsync("v1/batch", Api.Batch(Api.Track("off-1"), Api.Track("off-2")));
        // Straight from the store, past the API and its read barrier.
        var stored = await server.Store.QueryAsync(new EventQuery(Limit: 10), CancellationToken.None);
        var health = (await server.Anonymous.GetFromJsonAsync<JsonObject>("health"))!;

        Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        Assert.Equal(["off-2", "off-1"], stored.Items.Select(e => e.Message.MessageId));
        Assert.Null(health["journal"]);
        Assert.False(Directory.Exists(server.Options.JournalPath));
    }

    [Fact]
    public async Task the_journal_lives_beside_the_store_and_keeps_only_what_is_not_yet_indexed()
    {
        await using var server = await TestServer.StartAsync(configure: o => o.JournalSegmentBytes = 4096);
        for (var i = 0; i < 20; i++)
        {
            var ids = Enumerable.Range(0, 10).Select(k => Api.Track($"seg-{i}-{k}")).ToArray();
            Assert.Equal(HttpStatusCode.OK, (await server.Collect.PostJsonAsync("v1/batch", Api.Batch(ids))).StatusCode);
        }

        Assert.Equal(200, await server.Admin.EventCountAsync());
        // The indexer deletes a segment just after it counts the commit as indexed: a read in between sees it still.
        var health = (await server.Anonymous.GetFromJsonAsync<JsonObject>("health"))!["journal"]!;
        for (var tries = 0; tries < 50 && health["segments"]!.GetValue<int>() > 1; tries++)
        {
            await Task.Delay(20);
            health = (await server.Anonymous.GetFromJsonAsync<JsonObject>("health"))!["journal"]!;
        }

        Assert.Equal(Path.GetFullPath(Path.Combine(server.Options.DataDir, "journal")), health["directory"]!.GetValue<string>());
        Assert.Equal(0, health["behindBytes"]!.GetValue<long>());
        Assert.True(health["position"]!.GetValue<long>() > 20 * 4096 / 4, "20 requests of 10 events each should take several segments");
        // Indexed segments are deleted; the active one always stays.
        Assert.Equal(1, health["segments"]!.GetValue<int>());
        Assert.Single(Directory.GetFiles(server.Options.JournalPath, "*.tjl"));
    }
}
