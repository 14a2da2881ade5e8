using Tessera.Storage.Journal;

namespace Tessera.Storage.Tests;

public abstract partial class StoreConformanceTests
{
    [Fact]
    public async Task the_journal_position_is_recorded_in_the_commit_of_the_events_and_survives_reopening()
    {
        var store = await OpenAsync();
        Assert.Null(await store.GetJournalPositionAsync("j1", CancellationToken.None));

        var result = await store.AppendAsync(Events(3), new JournalMark("j1", 1234), CancellationToken.None);
        await CloseAsync(store);
        var reopened = await OpenAsync();

        Assert.Equal(3, result.Stored);
        Assert.Equal(1234, await reopened.GetJournalPositionAsync("j1", CancellationToken.None));
        Assert.Equal(3, (await ReadAllAsync(reopened)).Count);
    }

    [Fact]
    public async Task an_append_of_only_duplicates_still_moves_the_journal_position()
    {
        var store = await OpenAsync();
        await store.AppendAsync(Events(2), new JournalMark("j1", 100), CancellationToken.None);

        // A replayed record: every event is already stored.
        var again = await store.AppendAsync(Events(2), new JournalMark("j1", 200), CancellationToken.None);

        Assert.Equal(new Events.AppendResult(0, 2), again);
        Assert.Equal(200, await store.GetJournalPositionAsync("j1", CancellationToken.None));
        Assert.Equal(2, (await ReadAllAsync(store)).Count);
    }

    [Fact]
    public async Task each_journal_keeps_its_own_position()
    {
        var store = await OpenAsync();

        await store.AppendAsync(Events(1, "a"), new JournalMark("process-a", 10), CancellationToken.None);
        await store.AppendAsync(Events(1, "b"), new JournalMark("process-b", 99), CancellationToken.None);
        await store.AppendAsync(Events(1, "c"), new JournalMark("process-a", 20), CancellationToken.None);

        Assert.Equal(20, await store.GetJournalPositionAsync("process-a", CancellationToken.None));
        Assert.Equal(99, await store.GetJournalPositionAsync("process-b", CancellationToken.None));
    }
}
