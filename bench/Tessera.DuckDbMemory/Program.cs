using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DuckDB.NET.Data;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Storage.DuckDb;

// DuckDB's resident memory at a collection rate, alone: a transaction every 10 ms appends RATE/100 rows shaped like
// Tessera's events (the raw JSON as a 260-byte compressed value) and their typed properties (2, 6 or 10 rows an
// event, as the load generator's page views, orders and product views), into a fresh store (its schema made by the
// store itself, opened once and closed; then only DuckDB works) under the given memory cap
// and checkpoint threshold. Samples /proc/self/status every 100 ms; prints the resident set's median and highest after
// the first 5 s, the CPU used, and the commits that ran a checkpoint. docs/benchmarks.md, "DuckDB's memory cap".
// Usage: Tessera.DuckDbMemory [RATE=25000] [SECONDS=25] [MEMORY_MB=the store's default] [CHECKPOINT_MB=the store's default] ["extra SQL"]
//        Tessera.DuckDbMemory metadata STORE.duckdb [ROW_GROUP_SIZE ...]   (what DuckDB holds for the segments it has read: Metadata.cs)
if (args.FirstOrDefault() == "metadata")
{
    Metadata.Run(args[1..]);
    return;
}

var rate = int.Parse(args.ElementAtOrDefault(0) ?? "25000", CultureInfo.InvariantCulture);
var seconds = int.Parse(args.ElementAtOrDefault(1) ?? "25", CultureInfo.InvariantCulture);
var memoryMb = args.ElementAtOrDefault(2) is { } memoryArg ? int.Parse(memoryArg, CultureInfo.InvariantCulture) : DuckDbStoreOptions.DefaultMemoryLimitMb;
var checkpointMb = args.ElementAtOrDefault(3) is { } checkpointArg ? int.Parse(checkpointArg, CultureInfo.InvariantCulture) : DuckDbStoreOptions.DefaultCheckpointThresholdMb;
var extraSql = args.ElementAtOrDefault(4) ?? "";

var directory = Directory.CreateTempSubdirectory("tessera-duckdb-memory").FullName;
var path = Path.Combine(directory, "bench.duckdb");
try
{
    await using (var store = new DuckDbStore(new DuckDbStoreOptions(path), new ProfileEngine(IdentityRules.Default, ProfileRules.Default)))
    {
        await store.OpenAsync(CancellationToken.None);
    }

    using var connection = new DuckDBConnection($"Data Source={path}");
    connection.Open();
    Sql.Execute(connection, $"SET memory_limit = '{memoryMb}MB'; SET checkpoint_threshold = '{checkpointMb}MB'; SET threads = {Environment.ProcessorCount}; {extraSql}");

    var samples = new List<(double Seconds, long Kb)>();
    var clock = Stopwatch.StartNew();
    using var stop = new CancellationTokenSource();
    var sampler = Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested)
        {
            var kb = long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            lock (samples) { samples.Add((clock.Elapsed.TotalSeconds, kb)); }
            await Task.Delay(100, CancellationToken.None);
        }
    });

    var random = new Random(1);
    string[] names = ["product_id", "sku", "category", "name", "brand", "variant", "price", "currency", "position", "url"];
    string[] events = ["Product Viewed", "Order Completed", "Page"];
    var raw = new byte[260];
    var commits = new List<double>();
    var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
    long seq = 0;
    for (var tick = 0; tick < seconds * 100; tick++)
    {
        var wait = (tick * 10.0) - clock.Elapsed.TotalMilliseconds;
        if (wait > 0) { Thread.Sleep(TimeSpan.FromMilliseconds(wait)); }
        var started = Stopwatch.GetTimestamp();
        using (var transaction = connection.BeginTransaction())
        {
            using var eventRows = connection.CreateAppender("events");
            using var propertyRows = connection.CreateAppender("event_properties");
            for (var i = 0; i < rate / 100; i++)
            {
                seq++;
                var now = DateTimeOffset.UtcNow;
                var name = events[random.Next(events.Length)];
                var profile = "prof_" + random.Next(1, 1_000_000).ToString(CultureInfo.InvariantCulture);
                random.NextBytes(raw);
                eventRows.CreateRow().AppendValue(seq).AppendValue(Guid.NewGuid().ToString()).AppendValue("src_demo").AppendValue("track").AppendValue(name)
                    .AppendValue($"user_{random.Next(1, 200_000)}").AppendValue(Guid.NewGuid().ToString()).AppendNullValue().AppendNullValue().AppendValue(profile)
                    .AppendValue(now).AppendValue(now).AppendValue(now).AppendValue(now).AppendValue(raw).EndRow();
                var properties = name == "Page" ? 2 : name == "Order Completed" ? 6 : 10;
                for (var k = 0; k < properties; k++)
                {
                    var row = propertyRows.CreateRow().AppendValue(seq).AppendValue(name).AppendValue(name != "Page").AppendValue(now).AppendValue(profile).AppendValue(names[k]);
                    if (k % 4 == 2) { row.AppendValue("number").AppendNullValue().AppendValue((decimal)(random.Next(100_000) / 100.0)).AppendNullValue().EndRow(); }
                    else { row.AppendValue("string").AppendValue($"{names[k]}_{random.Next(10_000)}").AppendNullValue().AppendNullValue().EndRow(); }
                }
            }

            eventRows.Close();
            propertyRows.Close();
            transaction.Commit();
        }

        commits.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    var elapsed = clock.Elapsed.TotalSeconds;
    var cores = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds / elapsed;
    await stop.CancelAsync();
    await sampler;
    List<long> mb;
    lock (samples) { mb = [.. samples.Where(s => s.Seconds > 5).Select(s => s.Kb / 1024).Order()]; }
    var slow = commits.Where(c => c > 100).Order().ToList();
    Console.WriteLine($"memory cap {memoryMb} MB, checkpoint at {checkpointMb} MB{(extraSql.Length > 0 ? ", " + extraSql : "")}: {seq / elapsed:F0} rows/s of events, " +
        $"{cores:F2} cores; resident median {mb[mb.Count / 2]} MB, highest {mb[^1]} MB (after the first 5 s); {slow.Count} commits over 100 ms (checkpoints), median {(slow.Count > 0 ? slow[slow.Count / 2] : 0):F0} ms");
    Console.WriteLine("RESULT " + JsonSerializer.Serialize(new
    {
        benchmark = "duckdb_memory",
        rate,
        seconds,
        memory_limit_mb = memoryMb,
        checkpoint_mb = checkpointMb,
        extra_sql = extraSql,
        events_per_s = Math.Round(seq / elapsed),
        cpu_cores = Math.Round(cores, 2),
        rss_median_mb = mb[mb.Count / 2],
        rss_max_mb = mb[^1],
        checkpoint_commits = slow.Count,
    }));
}
finally
{
    DeleteDirectory(directory);
}


static void DeleteDirectory(string directory)
{
    try { Directory.Delete(directory, recursive: true); }
    catch (IOException) { Console.Error.WriteLine($"left {directory} behind"); }
}
