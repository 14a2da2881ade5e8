using System.Diagnostics;
using Tessera.Core.Collection;
using Tessera.Storage.Events;

namespace Tessera.Storage.Tests;

public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task appended_events_read_back_with_every_column()
    {
        var store = await OpenAsync();
        var full = Event("m-full");
        var sparse = Event("m-sparse", type: MessageType.Identify, name: null, anonymousId: null) with
        {
            GroupId = null,
            PreviousId = null,
            OriginalTimestamp = null,
            SentAt = null,
            Raw = """{"type":"identify",  "messageId":"m-sparse", "userId":"u-1", "traits":{"b":1,"a":2}}""",
        };

        var result = await store.AppendAsync([full, sparse], CancellationToken.None);

        Assert.Equal(new AppendResult(2, 0), result);
        var page = await store.QueryAsync(new EventQuery(), CancellationToken.None);
        Assert.Equal(2, page.Items.Count);
        Assert.Null(page.NextCursor);
        Assert.Equal(sparse, page.Items[0].Message);
        Assert.Equal(full, page.Items[1].Message);
        Assert.True(page.Items[0].Seq > page.Items[1].Seq);
        // Both carry user u-1, so the engine put them in one profile, and the events are stored under it.
        Assert.All(page.Items, e => Assert.NotNull(e.ProfileId));
        Assert.Equal(page.Items[0].ProfileId, page.Items[1].ProfileId);
    }

    [Fact]
    public async Task events_page_newest_first_and_the_cursor_reaches_every_event_once()
    {
        var store = await OpenAsync();
        await store.AppendAsync(Events(7, "first"), CancellationToken.None);
        await store.AppendAsync(Events(6, "second"), CancellationToken.None);

        var seen = new List<StoredEvent>();
        var query = new EventQuery(Limit: 5);
        var pages = 0;
        while (true)
        {
            var page = await store.QueryAsync(query, CancellationToken.None);
            pages++;
            seen.AddRange(page.Items);
            if (page.NextCursor is not { } next) { break; }
            Assert.Equal(5, page.Items.Count);
            query = query with { Before = next };
        }

        Assert.Equal(3, pages);
        Assert.Equal(13, seen.Count);
        Assert.Equal(seen.Select(e => e.Seq).OrderDescending(), seen.Select(e => e.Seq));
        Assert.Equal(13, seen.Select(e => e.Seq).Distinct().Count());
        var expected = Enumerable.Range(0, 6).Select(i => $"second-{i}").Reverse().Concat(Enumerable.Range(0, 7).Select(i => $"first-{i}").Reverse());
        Assert.Equal(expected, seen.Select(e => e.Message.MessageId));
    }

    [Fact]
    public async Task each_filter_returns_only_the_events_that_match_it()
    {
        var store = await OpenAsync();
        await store.AppendAsync(
        [
            Event("m-1", name: "Signed Up", userId: "u-1", anonymousId: "a-1"),
            Event("m-2", name: "Order Completed", userId: "u-2", anonymousId: "a-1"),
            Event("m-3", type: MessageType.Identify, name: null, userId: "u-1", anonymousId: "a-2"),
            Event("m-4", sourceId: "src_b", name: "Order Completed", userId: "u-3", anonymousId: null),
        ], CancellationToken.None);

        async Task<string[]> Ids(EventQuery q) => (await ReadAllAsync(store, q)).Select(e => e.Message.MessageId).Order().ToArray();

        Assert.Equal(["m-3"], await Ids(new EventQuery(Type: MessageType.Identify)));
        Assert.Equal(["m-2", "m-4"], await Ids(new EventQuery(Event: "Order Completed")));
        Assert.Equal(["m-1", "m-3"], await Ids(new EventQuery(UserId: "u-1")));
        Assert.Equal(["m-1", "m-2"], await Ids(new EventQuery(AnonymousId: "a-1")));
        Assert.Equal(["m-4"], await Ids(new EventQuery(SourceId: "src_b")));
        Assert.Empty(await Ids(new EventQuery(ProfileIds: ["p-none"])));
        Assert.Empty(await Ids(new EventQuery(ProfileIds: [])));
        var u3 = store.Engine.FindByIdentifier(new Core.Identity.Identifier("user_id", "u-3"))!;
        Assert.Equal(["m-4"], await Ids(new EventQuery(ProfileIds: ["p-none", u3])));
        Assert.Equal(["m-2"], await Ids(new EventQuery(Event: "Order Completed", SourceId: "src_a")));
        var newest = (await store.QueryAsync(new EventQuery(Limit: 1), CancellationToken.None)).Items[0];
        Assert.Equal(["m-1", "m-3"], await Ids(new EventQuery(Before: newest.Seq, UserId: "u-1")));
    }

    [Fact]
    public async Task a_message_id_resent_within_the_window_is_stored_once()
    {
        var store = await OpenAsync(dedupWindow: TimeSpan.FromHours(1));
        await store.AppendAsync([Event("m-1"), Event("m-2")], CancellationToken.None);

        var again = await store.AppendAsync([Event("m-1", receivedAt: Now.AddMinutes(30)), Event("m-3")], CancellationToken.None);

        Assert.Equal(new AppendResult(1, 1), again);
        Assert.Equal(["m-3", "m-2", "m-1"], (await ReadAllAsync(store)).Select(e => e.Message.MessageId));
    }

    [Fact]
    public async Task a_message_id_resent_after_the_window_is_stored_again()
    {
        var store = await OpenAsync(dedupWindow: TimeSpan.FromHours(1));
        await store.AppendAsync([Event("m-1", receivedAt: Now.AddHours(-2))], CancellationToken.None);

        var again = await store.AppendAsync([Event("m-1")], CancellationToken.None);

        Assert.Equal(new AppendResult(1, 0), again);
        Assert.Equal(2, (await ReadAllAsync(store)).Count);
    }

    /// <summary>
    /// A copy stored again after the window starts a new window from its own receipt: a resend soon after it is a
    /// duplicate. Receipt times 50 minutes ago and 20 minutes ahead keep the first sighting out of the purge (which
    /// goes by the clock) while the second is already past the window.
    /// </summary>
    [Fact]
    public async Task a_copy_stored_again_after_the_window_starts_a_new_window()
    {
        var store = await OpenAsync(dedupWindow: TimeSpan.FromHours(1));
        await store.AppendAsync([Event("m-1", receivedAt: DateTimeOffset.UtcNow.AddMinutes(-50))], CancellationToken.None);

        var again = await store.AppendAsync([Event("m-1", receivedAt: DateTimeOffset.UtcNow.AddMinutes(20))], CancellationToken.None);
        var third = await store.AppendAsync([Event("m-1", receivedAt: DateTimeOffset.UtcNow.AddMinutes(30))], CancellationToken.None);

        Assert.Equal(new AppendResult(1, 0), again);
        Assert.Equal(new AppendResult(0, 1), third);
        Assert.Equal(2, (await ReadAllAsync(store)).Count);
    }

    /// <summary>
    /// A resend is judged by its own receipt time against the first copy's, not by the clock when the store gets to it
    /// (events wait in the journal first). PostgreSQL's claim always compared receipt times; DuckDB compared with the
    /// clock at staging, and here would have taken the second m-1 (received two hours after the first) for a resend.
    /// </summary>
    [Fact]
    public async Task whether_a_resend_is_within_the_window_depends_on_receipt_times_not_on_when_it_is_stored()
    {
        var store = await OpenAsync(dedupWindow: TimeSpan.FromHours(1));
        await store.AppendAsync([Event("m-1"), Event("m-2")], CancellationToken.None);

        var again = await store.AppendAsync([Event("m-1", receivedAt: Now.AddHours(2)), Event("m-2", receivedAt: Now.AddMinutes(30))], CancellationToken.None);

        Assert.Equal(new AppendResult(1, 1), again);
        Assert.Equal(["m-1", "m-2", "m-1"], (await ReadAllAsync(store)).Select(e => e.Message.MessageId));
    }

    [Fact]
    public async Task the_same_message_id_from_two_sources_is_two_events()
    {
        var store = await OpenAsync();

        var result = await store.AppendAsync([Event("m-1", sourceId: "src_a"), Event("m-1", sourceId: "src_b")], CancellationToken.None);

        Assert.Equal(new AppendResult(2, 0), result);
    }

    [Fact]
    public async Task a_message_id_twice_in_one_append_is_stored_once_keeping_the_first()
    {
        var store = await OpenAsync();

        var result = await store.AppendAsync([Event("m-1", name: "First"), Event("m-2"), Event("m-1", name: "Second")], CancellationToken.None);

        Assert.Equal(new AppendResult(2, 1), result);
        var stored = await ReadAllAsync(store);
        Assert.Equal(["m-2", "m-1"], stored.Select(e => e.Message.MessageId));
        Assert.Equal("First", stored[1].Message.Event);
    }

    [Fact]
    public async Task dedup_survives_reopening_the_store()
    {
        var store = await OpenAsync();
        await store.AppendAsync(Events(3), CancellationToken.None);
        await CloseAsync(store);

        var reopened = await OpenAsync();
        var result = await reopened.AppendAsync([Event("m-0"), Event("m-2"), Event("m-new")], CancellationToken.None);

        Assert.Equal(new AppendResult(1, 2), result);
        Assert.Equal(4, (await reopened.GetStatsAsync(CancellationToken.None)).Events);
    }

    [Fact]
    public async Task an_empty_append_stores_nothing()
    {
        var store = await OpenAsync();

        Assert.Equal(new AppendResult(0, 0), await store.AppendAsync([], CancellationToken.None));
        Assert.Empty((await store.QueryAsync(new EventQuery(), CancellationToken.None)).Items);
    }

    [Fact]
    public async Task stats_count_events_and_sources()
    {
        var store = await OpenAsync();
        await store.AppendAsync(Events(4), CancellationToken.None);
        await store.CreateSourceAsync("web", "default", "wk-1", CancellationToken.None);

        var stats = await store.GetStatsAsync(CancellationToken.None);

        Assert.Equal(4, stats.Events);
        Assert.Equal(1, stats.Sources);
    }

    /// <summary>Also the raw throughput figure for docs/benchmarks.md: see the test output.</summary>
    [Fact]
    public async Task appending_100k_events_in_batches_of_5000_stores_every_one()
    {
        var store = await OpenAsync();
        var batches = Enumerable.Range(0, 20).Select(b => Enumerable.Range(0, 5000).Select(i => Event($"bulk-{b}-{i}", userId: $"u-{i % 1000}")).ToList()).ToList();

        var clock = Stopwatch.StartNew();
        foreach (var batch in batches) { Assert.Equal(5000, (await store.AppendAsync(batch, CancellationToken.None)).Stored); }
        clock.Stop();

        Assert.Equal(100_000, (await store.GetStatsAsync(CancellationToken.None)).Events);
        Console.WriteLine($"[{store.Kind}] AppendAsync: 100000 events in batches of 5000 in {clock.Elapsed.TotalSeconds:F2} s = {100_000 / clock.Elapsed.TotalSeconds:F0} events/s");
    }
}
