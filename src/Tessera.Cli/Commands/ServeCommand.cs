using System.CommandLine;
using Tessera.Server.Hosting;

namespace Tessera.Cli.Commands;

internal static class ServeCommand
{
    public static Command Create()
    {
        var store = new StoreOptions();
        var urls = new Option<string>("--urls") { Description = "Where to listen", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var demo = new Option<bool>("--demo") { Description = "Seed a realistic demo data set when the store is empty" };
        var journalDir = new Option<string?>("--journal-dir") { Description = "Directory of the journal (default: journal in --data-dir); one process per directory" };
        var noJournal = new Option<bool>("--no-journal") { Description = "Answer only after the store's commit instead of after the journal's fsync (slower)" };
        var checkpointMb = new Option<int>("--duckdb-checkpoint-mb") { Description = "DuckDB's write-ahead log size (MB) at which it is checkpointed into the file; the rows since then stay in memory", DefaultValueFactory = _ => new TesseraOptions().DuckDbCheckpointThresholdMb };
        var memoryMb = new Option<int>("--duckdb-memory-mb") { Description = "DuckDB's memory cap (MB): its cached and not yet checkpointed blocks; past it DuckDB drops cached blocks and spills to its temporary directory", DefaultValueFactory = _ => new TesseraOptions().DuckDbMemoryLimitMb };
        var threads = new Option<int>("--duckdb-threads") { Description = "DuckDB's threads (a query's own and DuckDB's workers) for audience previews, exports, event pages and re-resolving; writes run DuckDB on one", DefaultValueFactory = _ => new TesseraOptions().DuckDbThreads };
        var bulkCommit = new Option<int>("--duckdb-bulk-commit-events") { Description = "Under load (events faster than this many per 12 s), commit the embedded store in transactions of this many events (three DuckDB row groups by default), written straight to the file; 0 commits every 25 ms whatever the rate", DefaultValueFactory = _ => new TesseraOptions().DuckDbBulkCommitEvents };
        var bulkWindow = new Option<int>("--duckdb-bulk-commit-window-ms") { Description = "Benchmarks: the longest the embedded store holds a transaction open for a bulk commit", Hidden = true, DefaultValueFactory = _ => (int)new TesseraOptions().DuckDbBulkCommitWindow.TotalMilliseconds };
        var backgroundNice = new Option<int>("--background-nice") { Description = "Nice value (0-19) of the threads that index and store events behind the answers, so the answers get the CPU first; 0 runs them at the server's priority", DefaultValueFactory = _ => new TesseraOptions().BackgroundNice };
        backgroundNice.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 0 or > 19) { r.AddError($"--background-nice: {r.GetValueOrDefault<int>()} is not a nice value (0 to 19)."); }
        });
        var indexerDelay = new Option<int>("--indexer-delay-ms") { Description = "Tests only: delay every indexer commit", Hidden = true };
        var indexChunk = new Option<int>("--index-chunk-events") { Description = "Benchmarks: events the indexer reads from the journal and hands the embedded store at a time", Hidden = true, DefaultValueFactory = _ => new TesseraOptions().IndexChunkEvents };
        var command = new Command("serve", "Run the Tessera server.") { urls, demo, journalDir, noJournal, checkpointMb, memoryMb, threads, bulkCommit, bulkWindow, backgroundNice, indexerDelay, indexChunk };
        store.AddTo(command);
        command.SetAction(async (result, cancellationToken) =>
        {
            var options = store.Read(result);
            options.Urls = result.GetValue(urls)!;
            options.Demo = result.GetValue(demo);
            options.JournalDir = result.GetValue(journalDir);
            options.Journal = !result.GetValue(noJournal);
            options.DuckDbCheckpointThresholdMb = result.GetValue(checkpointMb);
            options.DuckDbMemoryLimitMb = result.GetValue(memoryMb);
            options.DuckDbThreads = result.GetValue(threads);
            options.DuckDbBulkCommitEvents = result.GetValue(bulkCommit);
            options.DuckDbBulkCommitWindow = TimeSpan.FromMilliseconds(result.GetValue(bulkWindow));
            options.BackgroundNice = result.GetValue(backgroundNice);
            options.IndexerDelay = TimeSpan.FromMilliseconds(result.GetValue(indexerDelay));
            options.IndexChunkEvents = result.GetValue(indexChunk);
            try
            {
                await using var app = TesseraServer.Build(options);
                await app.RunAsync();
                return 0;
            }
            catch (Exception e) when (e is Storage.StoreException or Storage.StoreUnavailableException or Storage.Journal.JournalException or ArgumentException)
            {
                await Console.Error.WriteLineAsync($"tessera: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
