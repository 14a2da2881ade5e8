using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Tessera.Core.Audiences;
using Tessera.Core.Collection;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Storage;
using Tessera.Storage.DuckDb;
using Tessera.Storage.Postgres;

// Usage: audiencebench duckdb DIR [PROFILES] [RUNS] [MEMORY_MB] [THREADS]
//        audiencebench postgres CONNECTION_STRING [PROFILES] [RUNS]
// Fills the store through its own AppendAsync (so it holds exactly what Tessera would: events, identity log, trait
// history and the profile state tables) unless it already holds data (a DuckDB DIR is kept between runs; delete it
// to start over), then times audience previews: one warm-up, then RUNS timed runs each, medians printed as JSON. A
// DuckDB store is left with activation's and the journeys' cursors at the end of its logs (see below).
var kind = args.ElementAtOrDefault(0) ?? "duckdb";
var location = args.ElementAtOrDefault(1) ?? Path.Combine(Path.GetTempPath(), "tessera-audiencebench");
var profiles = long.Parse(args.ElementAtOrDefault(2) ?? "1000000", CultureInfo.InvariantCulture);
var runs = int.Parse(args.ElementAtOrDefault(3) ?? "5", CultureInfo.InvariantCulture);
// The store's own default unless given, so the figures are those of the cap Tessera ships with.
var memoryMb = args.ElementAtOrDefault(4) is { } memoryArg ? int.Parse(memoryArg, CultureInfo.InvariantCulture) : DuckDbStoreOptions.DefaultMemoryLimitMb;
// DuckDB's threads (tessera serve's --duckdb-threads): the machine's cores unless given.
var threads = args.ElementAtOrDefault(5) is { } threadsArg ? int.Parse(threadsArg, CultureInfo.InvariantCulture) : Environment.ProcessorCount;
var now = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

var engine = new ProfileEngine(IdentityRules.Default, ProfileRules.Default);
ITesseraStore store = kind == "postgres"
    ? new PostgresStore(new PostgresStoreOptions(location) { DedupWindow = TimeSpan.FromDays(1) }, engine)
    : new DuckDbStore(new DuckDbStoreOptions(Path.Combine(Directory.CreateDirectory(location).FullName, "tessera.duckdb")) { DedupWindow = TimeSpan.FromDays(1), MemoryLimitMb = memoryMb, Threads = threads }, engine);
var openWatch = Stopwatch.StartNew();
await store.OpenAsync(CancellationToken.None);
Console.Error.WriteLine($"opened in {openWatch.Elapsed.TotalSeconds:F1} s");
await using (store)
{
    var stats = await store.GetStatsAsync(CancellationToken.None);
    double? fillSeconds = null;
    if (stats.Events == 0)
    {
        var watch = Stopwatch.StartNew();
        long appended = 0;
        foreach (var chunk in Messages(profiles, now).Chunk(50_000))
        {
            await store.AppendAsync(chunk, CancellationToken.None);
            appended += chunk.Length;
            if (appended % 1_000_000 == 0) { Console.Error.WriteLine($"{appended:N0} events, {watch.Elapsed.TotalSeconds:F0} s"); }
        }

        fillSeconds = watch.Elapsed.TotalSeconds;
        stats = await store.GetStatsAsync(CancellationToken.None);
        if (kind == "postgres")
        {
            // What autovacuum does after a bulk load, so the planner sees the real table sizes.
            await using var connection = new Npgsql.NpgsqlConnection(location);
            await connection.OpenAsync();
            await using var analyze = new Npgsql.NpgsqlCommand("ANALYZE", connection);
            await analyze.ExecuteNonQueryAsync();
        }
    }

    Console.WriteLine(JsonSerializer.Serialize(new
    {
        benchmark = "audience_fill",
        store = store.Kind,
        events = stats.Events,
        profiles = stats.Profiles,
        fill_seconds = fillSeconds is { } s ? Math.Round(s, 1) : (double?)null,
        fill_events_per_second = fillSeconds is { } f ? Math.Round(stats.Events / f) : (double?)null,
        memory_limit_mb = kind == "duckdb" ? memoryMb : (int?)null,
        threads = kind == "duckdb" ? threads : (int?)null,
    }));

    var audiences = new (string Name, string Json)[]
    {
        ("three_conditions", """
            {"and":[
              {"trait":"plan","op":"eq","value":"pro"},
              {"event":"Order Completed","where":[{"property":"revenue","op":"gt","value":50}],"within":"30d","count":{"op":"gte","value":3}},
              {"event":"Order Completed","within":"90d","sum":{"property":"revenue","op":"gte","value":100}}]}
            """),
        ("sequence_15m", """
            {"sequence":[{"event":"Page Viewed","first":true},
                         {"event":"Order Completed","where":[{"property":"product_id","op":"eq","value":"p-7"}]}],
             "within":"15m"}
            """),
        // A path event_properties does not hold: read from each message's raw JSON (its text pre-filter included),
        // which the DuckDB store keeps compressed (decoded per row read).
        ("json_path", """
            {"event":"Order Completed","where":[{"property":"context.campaign.source","op":"eq","value":"newsletter"}],"within":"90d"}
            """),
    };
    foreach (var (name, json) in audiences)
    {
        var definition = AudienceDefinition.Parse(json, out var errors) ?? throw new InvalidOperationException(string.Join("; ", errors));
        if (Environment.GetEnvironmentVariable("AUDIENCEBENCH_EXPLAIN") == "plan")
        {
            await ExplainAsync(store, definition, now, location, analyze: false);
            continue;
        }

        var timings = new List<double>();
        var cpu = new List<double>();
        AudiencePreviewResult? last = null;
        for (var run = 0; run <= runs; run++)
        {
            // CPU time of this process as well: on a shared machine it moves less than wall time (DuckDB runs in-process;
            // for PostgreSQL it is only the client's share).
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var watch = Stopwatch.StartNew();
            var preview = await store.PreviewAudienceAsync(definition, _ => null, now, 100, CancellationToken.None);
            var ms = watch.Elapsed.TotalMilliseconds;
            if (run > 0)
            {
                timings.Add(ms);
                cpu.Add((Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds);
            }
            last = new AudiencePreviewResult(preview.Count, preview.Sample.Take(3).ToArray());
        }

        timings.Sort();
        cpu.Sort();
        if (Environment.GetEnvironmentVariable("AUDIENCEBENCH_EXPLAIN") == "1") { await ExplainAsync(store, definition, now, location); }
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            benchmark = "audience_preview",
            store = store.Kind,
            audience = name,
            members = last!.Count,
            sample = last.Sample,
            median_ms = Math.Round(timings[timings.Count / 2], 1),
            runs_ms = timings.Select(t => Math.Round(t, 1)),
            median_cpu_ms = Math.Round(cpu[cpu.Count / 2], 1),
            load_average = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : null,
        }));
    }
}

// A server that took these events over HTTP would have run activation's and the journeys' derivations over them as
// they came; with no destination, no journey and no event stating consent, those derive nothing and only move their
// cursors to the end of the logs. The fill skips them, so the cursors are put there now: a server started on this
// file (Tessera.LoadGen --store-from) then begins in the steady state, instead of catching up over ten million events
// while it is measured.
if (kind == "duckdb")
{
    await using var connection = new DuckDB.NET.Data.DuckDBConnection($"Data Source={Path.Combine(location, "tessera.duckdb")}");
    await connection.OpenAsync();
    await using var command = connection.CreateCommand();
    command.CommandText = """
        UPDATE activation_cursor SET change_id = (SELECT coalesce(max(id), 0) FROM audience_changes), seq = (SELECT coalesce(max(seq), 0) FROM events);
        UPDATE journey_cursor SET change_id = (SELECT coalesce(max(id), 0) FROM audience_changes), seq = (SELECT coalesce(max(seq), 0) FROM events);
        CHECKPOINT;
        """;
    await command.ExecuteNonQueryAsync();
}

// The query plan with actual times, on stderr: DuckDB's EXPLAIN ANALYZE, PostgreSQL's EXPLAIN (ANALYZE, BUFFERS).
static async Task ExplainAsync(ITesseraStore store, AudienceCondition definition, DateTimeOffset now, string location, bool analyze = true)
{
    var sql = store.ExplainAudienceSql(definition, _ => null, now);
    Console.Error.WriteLine(sql);
    System.Data.Common.DbConnection connection = store.Kind == "postgres"
        ? new Npgsql.NpgsqlConnection(location)
        : new DuckDB.NET.Data.DuckDBConnection($"Data Source={Path.Combine(location, "tessera.duckdb")}");
    await using (connection)
    {
        await connection.OpenAsync();
        if (store.Kind == "postgres")
        {
            // As the store runs it (PostgresAudienceDialect.Prelude), on this session.
            await using var settings = connection.CreateCommand();
            settings.CommandText = "SET jit = off; SET work_mem = '256MB'; SET enable_nestloop = off";
            await settings.ExecuteNonQueryAsync();
        }

        await using var command = connection.CreateCommand();
        command.CommandText = (store.Kind == "postgres" ? $"EXPLAIN {(analyze ? "(ANALYZE, BUFFERS) " : "")}" : analyze ? "EXPLAIN ANALYZE " : "EXPLAIN ") + sql.Text;
        foreach (var value in sql.Parameters)
        {
            var parameter = command.CreateParameter();
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }

        await using var reader = await command.ExecuteReaderAsync();
        do
        {
            while (await reader.ReadAsync())
            {
                Console.Error.WriteLine(string.Join(" | ", Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "" : Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture))));
            }
        }
        while (await reader.NextResultAsync());
    }
}

// Ten messages per person over the 120 days before now: an identify (plan: 20 % pro, email), four page views, three
// orders (revenue 5-150, product p-0..p-49), two email opens. About one person in ten orders within minutes of their
// first page view.
static IEnumerable<CollectedEvent> Messages(long people, DateTimeOffset now)
{
    var random = new Random(42);
    for (long p = 0; p < people; p++)
    {
        var user = $"u-{p}";
        var anonymous = $"a-{p}";
        var start = now.AddMinutes(-random.Next(0, 120 * 24 * 60));
        var n = 0;
        CollectedEvent Message(MessageType type, string? name, string? userId, string? anonymousId, DateTimeOffset at, string body)
        {
            var id = $"m-{p}-{n++}";
            var ids = (userId is null ? "" : $"\"userId\":\"{userId}\",") + (anonymousId is null ? "" : $"\"anonymousId\":\"{anonymousId}\",");
            var raw = $"{{\"type\":\"{type.Name()}\",\"messageId\":\"{id}\",{ids}{body}}}";
            return new CollectedEvent(id, "src_bench", type, name, userId, anonymousId, null, null, at, at, null, at, raw);
        }

        DateTimeOffset Later(DateTimeOffset after) => after.AddMinutes(random.Next(1, 60 * 24 * 20));
        var t = start;
        yield return Message(MessageType.Identify, null, user, anonymous, t.AddMinutes(-1),
            $"\"traits\":{{\"plan\":\"{(random.Next(5) == 0 ? "pro" : "free")}\",\"email\":\"person{p}@example.com\"}}");
        for (var i = 0; i < 4; i++)
        {
            yield return Message(MessageType.Track, "Page Viewed", null, anonymous, t, $"\"event\":\"Page Viewed\",\"properties\":{{\"path\":\"/p/{random.Next(100)}\"}}");
            t = Later(t);
        }

        var order = random.Next(10) == 0 ? start.AddMinutes(random.Next(1, 30)) : Later(start);
        for (var i = 0; i < 3; i++)
        {
            var revenue = random.Next(500, 15000) / 100m;
            yield return Message(MessageType.Track, "Order Completed", user, null, order,
                $"\"event\":\"Order Completed\",\"properties\":{{\"revenue\":{revenue.ToString(CultureInfo.InvariantCulture)},\"product_id\":\"p-{random.Next(50)}\"}}");
            order = order.AddMinutes(random.Next(1, 60 * 24 * 10));
        }

        for (var i = 0; i < 2; i++)
        {
            yield return Message(MessageType.Track, "Email Opened", user, null, Later(start), "\"event\":\"Email Opened\",\"properties\":{\"campaign\":\"c-1\"}");
        }
    }
}

internal sealed record AudiencePreviewResult(long Count, string[] Sample);
