using BenchmarkDotNet.Attributes;
using DuckDB.NET.Data;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Storage.DuckDb;

namespace Tessera.Benchmarks;

/// <summary>
/// What DuckDB itself costs to keep an event, table by table and column group by column group, apart from everything
/// Tessera does around it: the rows the store wrote for 100,000 of the load generator's events (through
/// <see cref="DuckDbStore.AppendAsync(IReadOnlyList{Tessera.Core.Collection.CollectedEvent}, CancellationToken)"/>, so the typed
/// properties and profile ids are the real ones) are copied again with <c>INSERT … SELECT</c> into a table of the same
/// shape, in transactions of 5,000 events, under the store's settings (two threads, 256 MB, checkpoints at 64 MB of
/// log, which run inside the commits as in the server). Per event: local append, log write and sync, checkpoint and
/// compression, and a checkpoint at the end of each iteration so every iteration pays for compressing its own rows.
/// The layouts without a column group show what that group costs; <c>raw as JSON text</c> what the raw JSON cost
/// before the store compressed it; <c>scan only</c> is the copy's own reading of its source, to subtract. The layouts
/// with a row group size attach the target file with it (<c>ATTACH … (ROW_GROUP_SIZE n)</c>; DuckDB's default is
/// 122,880): a transaction that appends at least a row group to a table has its rows written compressed as they come
/// and moved into the table at its commit, while below that they are copied into the table, written to the log and
/// compressed at a checkpoint (<c>LocalStorage::Flush</c>). At 5,000 events a commit, 16,384 puts
/// <c>event_properties</c> (~5 rows an event) on the first path, 4,096 <c>events</c> too. The layouts with no log
/// writes attach it with <c>RECOVERY_MODE no_wal_writes</c> (DuckDB 1.5): commits write nothing to the write-ahead log,
/// so what was committed since the last checkpoint is lost in a crash; the difference is what the log costs.
/// </summary>
[InvocationCount(1, unrollFactor: 1)]
public class StorageLayoutBenchmarks
{
    private const int Events = 100_000;
    private const int PerCommit = 5_000;

    /// <summary>
    /// Each layout: the table copied and the columns kept. <c>events</c> is as the store keeps it (the raw JSON
    /// compressed with the dictionary the store trained, <see cref="RawCodec"/>); <c>raw as JSON text</c> puts back the
    /// text column of schema 10 and before, for comparison in the same run.
    /// </summary>
    private static readonly Dictionary<string, (string Source, string Columns, bool RawAsText, string? Attach)> Layouts = new()
    {
        ["scan only"] = ("events", "*", false, null),
        ["events"] = ("events", "*", false, null),
        ["events, raw as JSON text"] = ("events", "*", true, null),
        ["events without raw"] = ("events", "* EXCLUDE (raw)", false, null),
        ["events, row groups of 4,096"] = ("events", "*", false, "ROW_GROUP_SIZE 4096"),
        ["events, no log writes"] = ("events", "*", false, "RECOVERY_MODE no_wal_writes"),
        ["event_properties"] = ("event_properties", "*", false, null),
        ["event_properties without event, track, ts, profile_id"] = ("event_properties", "* EXCLUDE (event, track, ts, profile_id)", false, null),
        ["event_properties, row groups of 16,384"] = ("event_properties", "*", false, "ROW_GROUP_SIZE 16384"),
        ["event_properties, no log writes"] = ("event_properties", "*", false, "RECOVERY_MODE no_wal_writes"),
    };

    private string _directory = "";
    private DuckDBConnection _connection = null!;
    private long _firstSeq;

    [ParamsSource(nameof(LayoutNames))]
    public string Layout { get; set; } = "";

    public static IEnumerable<string> LayoutNames => Layouts.Keys;

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), "tessera-bdn-layout-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_directory);
        var storePath = Path.Combine(_directory, "store.duckdb");
        var store = new DuckDbStore(new DuckDbStoreOptions(storePath), new ProfileEngine(IdentityRules.Default, ProfileRules.Default));
        store.OpenAsync(CancellationToken.None).GetAwaiter().GetResult();
        var events = Rows.Events(Events, "layout");
        for (var start = 0; start < Events; start += PerCommit)
        {
            store.AppendAsync(events.GetRange(start, PerCommit), CancellationToken.None).GetAwaiter().GetResult();
        }

        store.DisposeAsync().AsTask().GetAwaiter().GetResult();

        var (source, columns, rawAsText, attach) = Layouts[Layout];
        var layoutPath = Path.Combine(_directory, "layout.duckdb");
        _connection = new DuckDBConnection(attach is null ? $"Data Source={layoutPath}" : "Data Source=:memory:");
        _connection.Open();
        if (attach is not null) { Execute($"ATTACH '{layoutPath}' AS layout ({attach}); USE layout;"); }
        Execute($"""
            SET threads = 2; SET memory_limit = '256MB'; SET checkpoint_threshold = '64MB';
            ATTACH '{storePath}' AS store (READ_ONLY);
            CREATE TEMP TABLE source AS SELECT * FROM store.{source} ORDER BY seq;
            """);
        if (rawAsText)
        {
            // The messages' text, by messageId, in place of the stored (compressed) value.
            Execute("CREATE TABLE texts (message_id VARCHAR, raw VARCHAR)");
            using (var appender = _connection.CreateAppender("texts"))
            {
                foreach (var e in events) { appender.CreateRow().AppendValue(e.MessageId).AppendValue(e.Raw.ToString()).EndRow(); }
            }

            Execute("CREATE OR REPLACE TEMP TABLE source AS SELECT s.* REPLACE (t.raw AS raw) FROM temp.source s JOIN texts t USING (message_id) ORDER BY s.seq; DROP TABLE texts; CHECKPOINT");
        }

        Execute($"CREATE TABLE target AS SELECT {columns} FROM temp.source LIMIT 0");
        var compressed = Layout == "events" ? Scalar("SELECT count(*) FILTER (WHERE starts_with(hex(raw), '01')) || ' of ' || count(*) || ' rows compressed, ' || round(avg(octet_length(raw))) || ' B a row' FROM temp.source") : null;
        if (compressed is not null) { Console.WriteLine($"// layout 'events': {compressed}"); }

        Execute("DETACH store");
        using var first = _connection.CreateCommand();
        first.CommandText = "SELECT min(seq) FROM temp.source";
        _firstSeq = Convert.ToInt64(first.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Benchmark(OperationsPerInvoke = Events, Description = "INSERT … SELECT of 100,000 events' rows, 5,000 events a commit, per event")]
    public void Copy()
    {
        var (_, columns, _, _) = Layouts[Layout];
        for (var start = _firstSeq; start < _firstSeq + Events; start += PerCommit)
        {
            var range = $"seq >= {start} AND seq < {start + PerCommit}";
            Execute(Layout == "scan only"
                ? $"SELECT count(*) FROM temp.source WHERE {range}"
                : $"BEGIN; INSERT INTO target SELECT {columns} FROM temp.source WHERE {range}; COMMIT;");
        }

        // Every iteration pays for compressing its own rows into the file, not for whichever checkpoint happened to land in it.
        if (Layout != "scan only") { Execute("CHECKPOINT"); }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        // What the layout costs on disk, beside the time: the file once everything is checkpointed.
        Execute("CHECKPOINT");
        _connection.Dispose();
        Console.WriteLine($"// layout '{Layout}': {new FileInfo(Path.Combine(_directory, "layout.duckdb")).Length / 1048576.0:F1} MB on disk after the run");
        Directory.Delete(_directory, recursive: true);
    }

    private string? Scalar(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar()?.ToString();
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
