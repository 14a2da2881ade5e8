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
/// compression, and a checkpoint at the end of each iteration so every iteration pays for compressing its own rows. The layouts without a column group show what that group costs; <c>scan only</c> is the copy's own
/// reading of its source, to subtract.
/// </summary>
[InvocationCount(1, unrollFactor: 1)]
public class StorageLayoutBenchmarks
{
    private const int Events = 100_000;
    private const int PerCommit = 5_000;

    /// <summary>Each layout: the table copied, the columns kept, and the compression forced on <c>raw</c> (none: DuckDB chooses per segment, as the store does).</summary>
    private static readonly Dictionary<string, (string Source, string Columns, string? RawCompression)> Layouts = new()
    {
        ["scan only"] = ("events", "*", null),
        ["events"] = ("events", "*", null),
        ["events without raw"] = ("events", "* EXCLUDE (raw)", null),
        ["events, raw FSST only"] = ("events", "*", "fsst"),
        ["events, raw zstd"] = ("events", "*", "zstd"),
        ["events, raw uncompressed"] = ("events", "*", "uncompressed"),
        ["event_properties"] = ("event_properties", "*", null),
        ["event_properties without event, track, ts, profile_id"] = ("event_properties", "* EXCLUDE (event, track, ts, profile_id)", null),
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

        var (source, columns, rawCompression) = Layouts[Layout];
        _connection = new DuckDBConnection($"Data Source={Path.Combine(_directory, "layout.duckdb")}");
        _connection.Open();
        Execute($"""
            SET threads = 2; SET memory_limit = '256MB'; SET checkpoint_threshold = '64MB';
            ATTACH '{storePath}' AS store (READ_ONLY);
            CREATE TEMP TABLE source AS SELECT * FROM store.{source} ORDER BY seq;
            """);
        if (rawCompression is null)
        {
            Execute($"CREATE TABLE target AS SELECT {columns} FROM temp.source LIMIT 0");
        }
        else
        {
            // The store's own definition of the table, with the compression named on raw.
            using var definition = _connection.CreateCommand();
            definition.CommandText = $"SELECT sql FROM duckdb_tables() WHERE database_name = 'store' AND table_name = '{source}'";
            var sql = (string)definition.ExecuteScalar()!;
            var target = sql.Replace($"CREATE TABLE {source}(", "CREATE TABLE target(", StringComparison.Ordinal)
                .Replace("raw VARCHAR NOT NULL", $"raw VARCHAR NOT NULL USING COMPRESSION {rawCompression}", StringComparison.Ordinal);
            // A definition that no longer reads as expected would measure the plain table under this layout's name.
            if (!target.Contains("CREATE TABLE target(", StringComparison.Ordinal) || !target.Contains("USING COMPRESSION", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"The store's definition of {source} changed; cannot name raw's compression in: {sql}");
            }

            Execute(target);
        }

        Execute("DETACH store");
        using var first = _connection.CreateCommand();
        first.CommandText = "SELECT min(seq) FROM temp.source";
        _firstSeq = Convert.ToInt64(first.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Benchmark(OperationsPerInvoke = Events, Description = "INSERT … SELECT of 100,000 events' rows, 5,000 events a commit, per event")]
    public void Copy()
    {
        var (_, columns, _) = Layouts[Layout];
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

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
