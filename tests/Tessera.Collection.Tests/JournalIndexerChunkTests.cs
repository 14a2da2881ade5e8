using Microsoft.Extensions.Logging.Abstractions;
using Tessera.Core.Collection;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Server.Collection;
using Tessera.Server.Hosting;
using Tessera.Storage.DuckDb;
using Tessera.Storage.Events;
using Tessera.Storage.Journal;
using Tessera.Testing;

namespace Tessera.Collection.Tests;

/// <summary>
/// How the journal's indexer cuts what it reads back into chunks: whole records until a chunk holds at least
/// <see cref="TesseraOptions.IndexChunkEvents"/> events for a store whose commits join what was staged (the embedded
/// store), <see cref="TesseraOptions.MaxEventsPerCommit"/> for one that commits every chunk by itself. A real
/// DuckDB store and a real journal; the store is wrapped only to note the size of each chunk handed to it.
/// </summary>
public sealed class JournalIndexerChunkTests
{
    private static readonly int[] RecordSizes = [1, 5, 2, 7, 3, 1, 4, 6];

    [Theory]
    // Chunks of at least 3: records 1+5, 2+7, 3, 1+4, 6 (a record larger than the chunk is one chunk, never split).
    [InlineData(true, new[] { 6, 9, 3, 5, 6 })]
    // A store that commits each chunk: chunks of at least MaxEventsPerCommit (10): 1+5+2+7, 3+1+4+6.
    [InlineData(false, new[] { 15, 14 })]
    public async Task the_indexer_hands_the_store_whole_records_in_chunks_of_the_size_its_commits_call_for(bool joinsStagedAppends, int[] expectedChunks)
    {
        var dataDir = TempDirectory.Create("index-chunks");
        var options = new TesseraOptions { DataDir = dataDir, IndexChunkEvents = 3, MaxEventsPerCommit = 10 };
        await using var store = new DuckDbStore(new DuckDbStoreOptions(options.DuckDbPath), new ProfileEngine(IdentityRules.Default, ProfileRules.Default));
        await store.OpenAsync(CancellationToken.None);
        var recorder = new ChunkRecorder(store, joinsStagedAppends);
        using var indexer = new JournalIndexer(recorder, options, NullLogger<JournalIndexer>.Instance);
        await indexer.RecoverAsync(CancellationToken.None);

        // Every record is in the journal before the indexer starts, as when the store has fallen behind.
        var sent = new List<string>();
        for (var r = 0; r < RecordSizes.Length; r++)
        {
            var record = Enumerable.Range(0, RecordSizes[r]).Select(k => Track($"chunk-{r}-{k}")).ToList();
            sent.AddRange(record.Select(e => e.MessageId));
            indexer.Journal.Append(record);
        }

        await indexer.StartAsync(CancellationToken.None);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (indexer.Indexed < indexer.Journal.End && DateTime.UtcNow < deadline) { await Task.Delay(20); }
        var end = indexer.Journal.End;
        var indexed = indexer.Indexed;
        await indexer.StopAsync(CancellationToken.None);
        var stored = await store.QueryAsync(new EventQuery(Limit: 100), CancellationToken.None);

        Assert.Equal(expectedChunks, recorder.Chunks);
        Assert.Equal(end, indexed);
        Assert.Equal(Enumerable.Reverse(sent), stored.Items.Select(e => e.Message.MessageId));
    }

    private static CollectedEvent Track(string messageId)
    {
        var now = DateTimeOffset.UtcNow;
        return new CollectedEvent(messageId, "src_chunks", MessageType.Track, "Chunked", "u-chunks", null, null, null, now, null, null, now,
            $$"""{"type":"track","messageId":"{{messageId}}","userId":"u-chunks","event":"Chunked"}""");
    }

    /// <summary>The store as it is, noting how many events each staged chunk held; <see cref="JoinsStagedAppends"/> as the test asks.</summary>
    private sealed class ChunkRecorder(IJournalIndexStore store, bool joinsStagedAppends) : IJournalIndexStore
    {
        public List<int> Chunks { get; } = [];

        public bool JoinsStagedAppends => joinsStagedAppends;

        public Task<long?> GetJournalPositionAsync(string journalId, CancellationToken cancellationToken) =>
            store.GetJournalPositionAsync(journalId, cancellationToken);

        public Task<AppendResult> AppendAsync(IReadOnlyList<CollectedEvent> events, JournalMark mark, CancellationToken cancellationToken) =>
            store.AppendAsync(events, mark, cancellationToken);

        public Task<StagedAppend> StageAsync(IReadOnlyList<CollectedEvent> events, JournalMark mark, CancellationToken cancellationToken)
        {
            Chunks.Add(events.Count);
            return store.StageAsync(events, mark, cancellationToken);
        }
    }
}
