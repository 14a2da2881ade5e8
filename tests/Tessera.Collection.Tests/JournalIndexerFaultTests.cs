using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;
using Tessera.Core.Collection;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Server.Collection;
using Tessera.Server.Hosting;
using Tessera.Storage.DuckDb;
using Tessera.Storage.Events;
using Tessera.Testing;

namespace Tessera.Collection.Tests;

/// <summary>
/// What the journal acknowledged survives a commit the store fails: a real DuckDB store and a real journal, and a real
/// error of DuckDB's (its events table renamed away under the committer, then back).
/// </summary>
public sealed class JournalIndexerFaultTests
{
    /// <summary>
    /// The commit fails; while its cause is there the store's restore fails too and the indexer keeps retrying; once it
    /// is gone the store restores what it committed and the indexer reads the journal again from there. Every event
    /// appended is stored once, and the one person they are from is one profile.
    /// </summary>
    [Fact]
    public async Task events_whose_commit_failed_are_indexed_again_from_the_journal_and_stored_once_when_the_store_recovers()
    {
        var options = new TesseraOptions { DataDir = TempDirectory.Create("index-fault") };
        await using var store = new DuckDbStore(new DuckDbStoreOptions(options.DuckDbPath) { JournaledCommitInterval = TimeSpan.Zero }, new ProfileEngine(IdentityRules.Default, ProfileRules.Default));
        await store.OpenAsync(CancellationToken.None);
        var logger = new CountingLogger();
        using var indexer = new JournalIndexer(store, options, logger);
        await indexer.RecoverAsync(CancellationToken.None);
        await indexer.StartAsync(CancellationToken.None);
        void Append(string prefix)
        {
            indexer.Journal.Append([.. Enumerable.Range(0, 5).Select(i => Track($"{prefix}-{i}"))]);
            indexer.NotifyAppended();
        }

        Append("first");
        await WaitUntilAsync(() => indexer.Indexed == indexer.Journal.End);
        using (var other = new DuckDBConnection($"Data Source={options.DuckDbPath}"))
        {
            other.Open();
            Execute(other, "ALTER TABLE events RENAME TO events_away");
            Append("second");
            // The commit failed, and a retry with the cause still there (the store's restore) failed as well.
            await WaitUntilAsync(() => logger.Count(1106) >= 1);
            Assert.True(indexer.Indexed < indexer.Journal.End);
            Assert.NotNull(indexer.LastError);
            Execute(other, "ALTER TABLE events_away RENAME TO events");
        }

        Append("third");
        await WaitUntilAsync(() => indexer.Indexed == indexer.Journal.End);
        await indexer.StopAsync(CancellationToken.None);
        Assert.True(logger.Count(1112) >= 1, "the indexer read the journal again from the committed position");

        var stored = (await store.QueryAsync(new EventQuery(Limit: 100), CancellationToken.None)).Items;
        Assert.Equal(15, stored.Count);
        Assert.Equal(15, stored.Select(e => e.Message.MessageId).Distinct().Count());
        Assert.Single(stored.Select(e => e.ProfileId).Distinct());
        Assert.Equal(1, (await store.GetStatsAsync(CancellationToken.None)).Profiles);
    }

    private static async Task WaitUntilAsync(Func<bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!done())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(20);
        }
    }

    private static CollectedEvent Track(string messageId)
    {
        var now = DateTimeOffset.UtcNow;
        return new CollectedEvent(messageId, "src_fault", MessageType.Track, "Faulted", "u-fault", null, null, null, now, null, null, now,
            $$"""{"type":"track","messageId":"{{messageId}}","userId":"u-fault","event":"Faulted"}""");
    }

    private static void Execute(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>Counts the indexer's log entries by event id (1106: a stage failed and is retried; 1112: a rewind).</summary>
    private sealed class CountingLogger : ILogger<JournalIndexer>
    {
        private readonly Dictionary<int, int> _counts = [];

        public int Count(int eventId)
        {
            lock (_counts) { return _counts.GetValueOrDefault(eventId); }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_counts) { _counts[eventId.Id] = _counts.GetValueOrDefault(eventId.Id) + 1; }
        }
    }
}
