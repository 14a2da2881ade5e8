using System.Security.Cryptography;
using System.Text;
using Tessera.Testing;

namespace Tessera.Process.Tests;

/// <summary>Settings of <c>tessera serve</c> that change how the embedded store uses memory and threads: their checks through the real process, their effect on DuckDB in this one.</summary>
public sealed class ServeSettingsTests
{
    /// <summary>A DuckDB setting under its least is refused at start, with the flag and the least named.</summary>
    [Theory]
    [InlineData("--duckdb-checkpoint-mb", "0", "--duckdb-checkpoint-mb: must be at least 1 (MB), got 0.")]
    [InlineData("--duckdb-memory-mb", "31", "--duckdb-memory-mb: must be at least 32 (MB), got 31.")]
    [InlineData("--duckdb-threads", "0", "--duckdb-threads: must be at least 1, got 0.")]
    public async Task a_duckdb_setting_under_its_least_is_refused_with_the_flag_named(string flag, string value, string message)
    {
        var (exitCode, output) = await TesseraProcess.RunAsync("serve", "--data-dir", TempDirectory.Create("refused"), flag, value);

        Assert.NotEqual(0, exitCode);
        Assert.Contains(message, output, StringComparison.Ordinal);
    }

    /// <summary>
    /// A query that pays for DuckDB's threads (an event page) runs it with the machine's cores by default and with the
    /// number asked for when set, read back from DuckDB (the store's tests show it lowered to one while it only writes).
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(1)]
    [InlineData(3)]
    public async Task duckdb_runs_a_parallel_query_with_the_threads_asked_for(int? threads)
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o.Store = "duckdb";
            if (threads is { } n) { o.DuckDbThreads = n; }
        });

        using var page = await server.Admin.GetAsync("api/events?limit=1");
        Assert.Equal(System.Net.HttpStatusCode.OK, page.StatusCode);
        Assert.Equal((threads ?? Environment.ProcessorCount).ToString(System.Globalization.CultureInfo.InvariantCulture), await DuckDbSettingAsync(server, "threads"));
    }

    /// <summary>
    /// The cap reaches DuckDB: read back from DuckDB itself (a connection in the same process shares the server's
    /// database, and its settings), by default and when set.
    /// </summary>
    [Theory]
    [InlineData(null, "91.5 MiB")]
    [InlineData(48, "45.7 MiB")]
    public async Task the_duckdb_memory_cap_is_the_one_duckdb_runs_with(int? memoryMb, string expected)
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o.Store = "duckdb";
            if (memoryMb is { } mb) { o.DuckDbMemoryLimitMb = mb; }
        });

        Assert.Equal(expected, await DuckDbSettingAsync(server, "memory_limit"));
    }

    /// <summary>A DuckDB setting as the server's database runs with it.</summary>
    private static async Task<string> DuckDbSettingAsync(TestServer server, string name) =>
        (string)(await DuckDbFile.ScalarAsync(server.Options.DuckDbPath, $"SELECT current_setting('{name}')::VARCHAR"))!;

    /// <summary>
    /// DuckDB's allocator (its jemalloc) gives freed memory back after 100 ms from its background thread instead of
    /// holding it 5 + 5 s, with one arena for all of DuckDB's threads, unless the user chose otherwise: as jemalloc
    /// reports its options inside the server process.
    /// </summary>
    [Theory]
    [InlineData(null, "dirty_decay_ms 100, muzzy_decay_ms 0, background_thread true, narenas 1")]
    [InlineData("dirty_decay_ms:5000,muzzy_decay_ms:5000,narenas:4", "dirty_decay_ms 5000, muzzy_decay_ms 5000, background_thread false, narenas 4")]
    public async Task tessera_serve_runs_duckdbs_allocator_with_a_short_decay_unless_the_environment_sets_one(string? configured, string expected)
    {
        var environment = configured is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["DUCKDB_JE_MALLOC_CONF"] = configured };
        await using var tessera = await TesseraProcess.StartServeAsync(TempDirectory.Create("allocator"), environment);

        for (var i = 0; i < 50 && !tessera.Output.Contains("DuckDB's allocator", StringComparison.Ordinal); i++) { await Task.Delay(100); }
        Assert.Contains($"DuckDB's allocator gives freed memory back with {expected} (DUCKDB_JE_MALLOC_CONF)", tessera.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// The threads that index and store events behind the answers (the journal's indexer, the store's committer) run at
    /// a higher nice value, by default and as set, and every other thread of the server (the request path, the journal's
    /// group commit, the thread pool, DuckDB's) at the process's own, also after events went through both (a thread
    /// created by one of the two would inherit its value); 0 runs them all alike: as Linux reports each thread.
    /// </summary>
    [Theory]
    [InlineData(null, 5)]
    [InlineData("0", 0)]
    [InlineData("12", 12)]
    public async Task the_threads_behind_the_answers_run_at_the_nice_value_asked_for(string? flag, int expected)
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.False(Tessera.Storage.BackgroundPriority.Apply(5));
            return;
        }

        await using var tessera = await TesseraProcess.StartServeAsync(TempDirectory.Create("nice"), flag is null ? [] : ["--background-nice", flag]);
        using var collect = Http.Collect(tessera.BaseAddress);
        using var admin = Http.Admin(tessera.BaseAddress);
        var ids = Enumerable.Range(0, 20).Select(i => $"nice-{i}").ToList();
        foreach (var id in ids)
        {
            var body = "{\"batch\":[{\"type\":\"track\",\"userId\":\"u-nice\",\"event\":\"Checked\",\"messageId\":\"" + id + "\"}]}";
            (await collect.PostAsync("v1/batch", new StringContent(body, Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
        }

        Assert.Equal(ids.ToHashSet(), await Http.StoredMessageIdsAsync(admin));

        var threads = NiceValuesByThread(tessera.Id);
        string[] behind = ["Tessera journal", "Tessera DuckDB"];
        foreach (var name in behind) { Assert.Equal(expected, Assert.Single(threads, t => t.Name == name).Nice); }
        Assert.Contains(threads, t => t.Name == "Tessera group c");
        Assert.All(threads.Where(t => !behind.Contains(t.Name)), t => Assert.True(t.Nice == 0, $"thread {t.Name} runs at nice {t.Nice}"));
    }

    [Fact]
    public async Task a_nice_value_out_of_range_is_refused_with_the_flag_named()
    {
        var (exitCode, output) = await TesseraProcess.RunAsync("serve", "--data-dir", TempDirectory.Create("nice-refused"), "--background-nice", "20");

        Assert.NotEqual(0, exitCode);
        Assert.Contains("--background-nice: 20 is not a nice value (0 to 19).", output, StringComparison.Ordinal);
    }

    /// <summary>Each thread's name (as Linux keeps it, 15 characters) and nice value (/proc/PID/task/TID/stat, the 19th field); threads that ended meanwhile left out.</summary>
    private static List<(string Name, int Nice)> NiceValuesByThread(int pid)
    {
        var threads = new List<(string, int)>();
        foreach (var task in Directory.GetDirectories($"/proc/{pid}/task"))
        {
            string stat, name;
            try
            {
                stat = File.ReadAllText(Path.Combine(task, "stat"));
                name = File.ReadAllText(Path.Combine(task, "comm")).Trim();
            }
            catch (IOException)
            {
                continue;
            }

            // The name, in parentheses, may hold spaces: the fields are counted from after its closing one (field 3 on).
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            threads.Add((name, int.Parse(fields[19 - 3], System.Globalization.CultureInfo.InvariantCulture)));
        }

        return threads;
    }

    [Fact]
    public async Task with_a_one_mb_checkpoint_threshold_the_write_ahead_log_is_folded_into_the_file_as_events_arrive()
    {
        var dataDir = TempDirectory.Create("checkpoint-1");
        await using var tessera = await TesseraProcess.StartServeAsync(dataDir, "--duckdb-checkpoint-mb", "1");
        using var collect = Http.Collect(tessera.BaseAddress);
        using var admin = Http.Admin(tessera.BaseAddress);

        // 3,000 events with 2 KB of random hex each: about 12 MB of log (the raw JSON, which random text does not
        // compress, and the property's row), which would all still be in the log at the default 64 MB.
        var ids = new List<string>();
        for (var b = 0; b < 30; b++)
        {
            var batch = Enumerable.Range(0, 100).Select(i => $"ck-{b}-{i}").ToList();
            ids.AddRange(batch);
            var body = "{\"batch\":[" + string.Join(",", batch.Select(id =>
                "{\"type\":\"track\",\"userId\":\"u-" + id + "\",\"event\":\"Padded\",\"messageId\":\"" + id +
                "\",\"properties\":{\"pad\":\"" + Convert.ToHexString(RandomNumberGenerator.GetBytes(1024)) + "\"}}")) + "]}";
            (await collect.PostAsync("v1/batch", new StringContent(body, Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
        }

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await Http.StoredMessageIdsAsync(admin)).Count < ids.Count && DateTime.UtcNow < deadline) { await Task.Delay(200); }
        Assert.Equal(ids.ToHashSet(), await Http.StoredMessageIdsAsync(admin));

        var wal = new FileInfo(Path.Combine(dataDir, "tessera.duckdb.wal"));
        var walBytes = wal.Exists ? wal.Length : 0;
        // DuckDB folds the log at a commit past the threshold only when no read is running (this test's own reads can
        // be), and the committer's own checkpoint past 4 × the threshold waits for an activation step only past 8 ×
        // (DuckDbStore.CheckpointPastBound): 8 MB is the bound a commit leaves the log under, unless a read is running
        // at that moment too (then the next commit folds it). At the default 64 MB
        // the whole ~12 MB stays in it (13.7 MB measured).
        Assert.True(walBytes < 8L << 20, $"the write-ahead log holds {walBytes:N0} bytes; with a 1 MB threshold no commit leaves it over 8 MB");
        Assert.True(new FileInfo(Path.Combine(dataDir, "tessera.duckdb")).Length > 3L << 20, "the events' data is in the file");
    }
}
