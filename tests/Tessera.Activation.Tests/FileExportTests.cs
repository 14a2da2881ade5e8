using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CsvHelper;
using DuckDB.NET.Data;
using Tessera.Server.Exports;
using Tessera.Testing;

namespace Tessera.Activation.Tests;

/// <summary>
/// A <c>file</c> destination writes its audiences' members (and optionally their entries and exits) as CSV or
/// Parquet files into a directory, on a schedule or when asked; every run is a row of its delivery log.
/// </summary>
public sealed class FileExportTests
{
    [Fact]
    public async Task a_run_asked_for_writes_the_members_with_the_chosen_traits_as_csv_and_logs_rows_bytes_and_file()
    {
        await using var server = await Activation.StartAsync();
        var directory = Path.Combine(TempDirectory.Create("file-export"), "out", "nested");
        var pro = await server.CreateSegmentAsync("Pro Users", """{"trait":"plan","op":"eq","value":"pro"}""");
        await server.SendAsync("identify", """{"userId":"ann","traits":{"plan":"pro","email":"ann@example.com","name":"Ann, \"the\" admin","seats":12}}""");
        await server.SendAsync("identify", """{"userId":"bob","traits":{"plan":"free","email":"bob@example.com"}}""");
        await server.SendAsync("identify", """{"userId":"cy","anonymousId":"a-cy","traits":{"plan":"pro"}}""");
        var destination = await server.CreateDestinationAsync($$$"""
            {"type":"file","segments":["{{{pro}}}"],"directory":"{{{directory}}}","format":"csv","traits":["name","email","seats"],"schedule":{"at":"03:00"}}
            """);

        var run = await RunNowAsync(server, destination);
        Assert.Equal("file_export", run["type"]!.GetValue<string>());
        Assert.Equal("pending", run["status"]!.GetValue<string>());
        var done = await DeliveredRunAsync(server, destination, run["id"]!.GetValue<long>());
        var result = done["payload"]!["result"]!;
        var file = result["files"]![0]!;
        Assert.Equal(pro, file["segmentId"]!.GetValue<string>());
        Assert.Equal(2, file["rows"]!.GetValue<int>());
        Assert.Equal(2, result["rows"]!.GetValue<int>());
        Assert.Equal("api", done["payload"]!["trigger"]!.GetValue<string>());
        var name = file["file"]!.GetValue<string>();
        Assert.Matches($@"^pro_users-{pro}-\d{{8}}T\d{{6}}Z\.csv$", name);
        var path = Path.Combine(directory, name);
        Assert.Equal(new FileInfo(path).Length, file["bytes"]!.GetValue<long>());
        Assert.True(result["durationMs"]!.GetValue<long>() >= 0);
        Assert.Equal([name], Directory.GetFiles(directory).Select(Path.GetFileName));

        using var csv = CsvReader.FromFile(path, new CsvReaderOptions { HasHeader = true }, FileOptions.None);
        await csv.ReadHeaderAsync();
        Assert.Equal(["profile_id", "identifiers.anonymous_id", "identifiers.email", "identifiers.user_id", "traits.name", "traits.email", "traits.seats"], csv.Headers);
        var rows = new List<Dictionary<string, string?>>();
        while (await csv.ReadAsync()) { rows.Add(csv.Headers.ToDictionary(h => h, h => csv.GetStringOrNull(h))); }
        Assert.Equal(["ann", "cy"], rows.Select(r => r["identifiers.user_id"]).Order(StringComparer.Ordinal));
        var ann = rows.Single(r => r["identifiers.user_id"] == "ann");
        Assert.Equal("Ann, \"the\" admin", ann["traits.name"]);
        Assert.Equal("ann@example.com", ann["traits.email"]);
        Assert.Equal("12", ann["traits.seats"]);
        Assert.Equal(await server.ProfileIdAsync("user_id:ann"), ann["profile_id"]);
        Assert.Equal("a-cy", rows.Single(r => r["identifiers.user_id"] == "cy")["identifiers.anonymous_id"]);
    }

    [Fact]
    public async Task with_a_purpose_only_members_whose_latest_consent_grants_it_are_exported_counting_the_others()
    {
        await using var server = await Activation.StartAsync();
        var directory = TempDirectory.Create("file-export");
        var all = await server.CreateSegmentAsync("Everyone", """{"identifier":"user_id","op":"exists"}""");
        await server.SendAsync("identify", """{"userId":"yes","context":{"consent":{"categoryPreferences":{"marketing":true}}}}""");
        await server.SendAsync("identify", """{"userId":"revoked","context":{"consent":{"categoryPreferences":{"marketing":true}}}}""");
        await server.SendAsync("identify", """{"userId":"revoked","context":{"consent":{"categoryPreferences":{"marketing":false}}}}""");
        await server.SendAsync("identify", """{"userId":"silent"}""");
        // Consent given under an anonymous id counts once that id is merged into the member.
        await server.SendAsync("page", """{"anonymousId":"anon-m","name":"Settings","context":{"consent":{"categoryPreferences":{"marketing":true}}}}""");
        await server.SendAsync("identify", """{"userId":"merged","anonymousId":"anon-m"}""");
        var destination = await server.CreateDestinationAsync($$$"""
            {"type":"file","segments":["{{{all}}}"],"directory":"{{{directory}}}","purpose":"marketing","schedule":{"at":"03:00"}}
            """);

        var file = (await DeliveredRunAsync(server, destination, (await RunNowAsync(server, destination))["id"]!.GetValue<long>()))["payload"]!["result"]!["files"]![0]!;

        Assert.Equal(2, file["rows"]!.GetValue<int>());
        Assert.Equal(2, file["withoutConsent"]!.GetValue<int>());
        using var csv = CsvReader.FromFile(Path.Combine(directory, file["file"]!.GetValue<string>()), new CsvReaderOptions { HasHeader = true }, FileOptions.None);
        await csv.ReadHeaderAsync();
        var users = new List<string?>();
        while (await csv.ReadAsync()) { users.Add(csv.GetStringOrNull("identifiers.user_id")); }
        Assert.Equal(["merged", "yes"], users.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task parquet_files_read_back_through_duckdb_and_the_changes_file_holds_the_entries_and_exits_since_the_previous_run()
    {
        await using var server = await Activation.StartAsync();
        var directory = TempDirectory.Create("file-export");
        var vip = await server.CreateSegmentAsync("VIP", """{"trait":"tier","op":"eq","value":"vip"}""");
        await server.SendAsync("identify", """{"userId":"early","traits":{"tier":"vip"}}""");
        var destination = await server.CreateDestinationAsync($$$"""
            {"type":"file","segments":["{{{vip}}}"],"directory":"{{{directory}}}","format":"parquet","includeChanges":true,"schedule":{"every":"1d"}}
            """);
        await server.SendAsync("identify", """{"userId":"dee","traits":{"tier":"vip","city":"Oslo"}}""");
        await server.SendAsync("identify", """{"userId":"eve","traits":{"tier":"vip"}}""");

        var first = (await DeliveredRunAsync(server, destination, (await RunNowAsync(server, destination))["id"]!.GetValue<long>()))["payload"]!["result"]!["files"]![0]!;
        Assert.Equal(3, first["rows"]!.GetValue<int>());
        // Changes since the destination was created: the two who entered after it (not "early").
        Assert.Equal(2, first["changes"]!.GetValue<int>());
        var members = await QueryParquetAsync(Path.Combine(directory, first["file"]!.GetValue<string>()), "SELECT \"identifiers.user_id\", \"traits.city\" FROM t ORDER BY 1");
        Assert.Equal(["dee|Oslo", "early|", "eve|"], members);

        await Task.Delay(1100); // file names carry the second of the run
        await server.SendAsync("identify", """{"userId":"dee","traits":{"tier":"gold"}}""");
        await server.SendAsync("identify", """{"userId":"fay","traits":{"tier":"vip"}}""");
        var second = (await DeliveredRunAsync(server, destination, (await RunNowAsync(server, destination))["id"]!.GetValue<long>()))["payload"]!["result"]!["files"]![0]!;
        var changes = await QueryParquetAsync(Path.Combine(directory, second["changesFile"]!.GetValue<string>()), "SELECT change, profile_id FROM t ORDER BY seq::BIGINT");
        Assert.Equal([$"exited|{await server.ProfileIdAsync("user_id:dee")}", $"entered|{await server.ProfileIdAsync("user_id:fay")}"], changes);
        Assert.Equal(["early", "eve", "fay"], (await QueryParquetAsync(Path.Combine(directory, second["file"]!.GetValue<string>()), "SELECT \"identifiers.user_id\" FROM t ORDER BY 1")));
        Assert.Equal(4, Directory.GetFiles(directory, "*.parquet").Length);
    }

    [Fact]
    public async Task the_schedule_runs_by_itself_keeps_the_newest_files_and_resumes_after_a_restart_with_the_missed_run()
    {
        var dataDir = TempDirectory.Create("file-export-data");
        var directory = TempDirectory.Create("file-export");
        string destination;
        DateTimeOffset stopped;
        await using (var first = await Activation.StartAsync(dataDir))
        {
            var all = await first.CreateSegmentAsync("Everyone", """{"identifier":"user_id","op":"exists"}""");
            await first.SendAsync("identify", """{"userId":"u1"}""");
            destination = await first.CreateDestinationAsync($$$"""
                {"type":"file","segments":["{{{all}}}"],"directory":"{{{directory}}}","schedule":{"every":"2s"},"keep":2}
                """);
            await Activation.EventuallyAsync(async () => (await first.DeliveriesAsync(destination, "delivered")).Count >= 3, "three scheduled runs", seconds: 30);
            var runs = await first.DeliveriesAsync(destination);
            Assert.All(runs, r => Assert.Equal("schedule", r["payload"]!["trigger"]!.GetValue<string>()));
            // Scheduled instants are aligned to the interval, and named in the files.
            Assert.All(runs, r => Assert.Equal(0, r["causeId"]!.GetValue<long>() % 2000));
            // The schedule goes on every 2 s, and a run writes its file before it prunes: between runs there are two.
            await Activation.EventuallyAsync(() => Task.FromResult(Directory.GetFiles(directory, "*.csv").Length == 2), "the newest two files kept");
            stopped = DateTimeOffset.UtcNow;
        }

        await Task.Delay(3000);
        Assert.Equal(2, Directory.GetFiles(directory, "*.csv").Length);
        await using var second = await Activation.StartAsync(dataDir);
        await Activation.EventuallyAsync(async () => (await second.DeliveriesAsync(destination, "delivered")).Any(r => r["payload"]!["trigger"]!.GetValue<string>() == "missed"), "the missed run at start", seconds: 30);
        var missed = (await second.DeliveriesAsync(destination)).First(r => r["payload"]!["trigger"]!.GetValue<string>() == "missed");
        Assert.True(DateTimeOffset.FromUnixTimeMilliseconds(missed["causeId"]!.GetValue<long>()) > stopped);
        await Activation.EventuallyAsync(async () => (await second.DeliveriesAsync(destination, "delivered")).Any(r => r["payload"]!["trigger"]!.GetValue<string>() == "schedule" && r["id"]!.GetValue<long>() > missed["id"]!.GetValue<long>()), "the schedule going on after the restart", seconds: 30);
        List<string?> names = [];
        await Activation.EventuallyAsync(() =>
        {
            names = Directory.GetFiles(directory).Select(Path.GetFileName).ToList();
            return Task.FromResult(names.Count == 2);
        }, "the newest two files kept after the restart (listed between two runs)");
        Assert.All(names, n => Assert.EndsWith("Z.csv", n, StringComparison.Ordinal));
        Assert.DoesNotContain(names, n => n!.StartsWith('.'));
    }

    [Fact]
    public async Task a_run_that_cannot_write_is_logged_with_the_error_retried_and_succeeds_once_the_directory_is_back()
    {
        await using var server = await Activation.StartAsync(tune: o => o.MaxAttempts = 50);
        var parent = TempDirectory.Create("file-export");
        var directory = Path.Combine(parent, "exports");
        var all = await server.CreateSegmentAsync("Everyone", """{"identifier":"user_id","op":"exists"}""");
        await server.SendAsync("identify", """{"userId":"u1"}""");
        var destination = await server.CreateDestinationAsync($$$"""{"type":"file","segments":["{{{all}}}"],"directory":"{{{directory}}}"}""");

        // The directory's path is now a plain file: nothing can be written there.
        Directory.Delete(directory);
        await File.WriteAllTextAsync(directory, "in the way");
        var id = (await RunNowAsync(server, destination))["id"]!.GetValue<long>();
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).Single()["attempts"]!.GetValue<int>() >= 2, "two failed attempts");
        var failed = (await server.DeliveriesAsync(destination)).Single();
        Assert.Equal("pending", failed["status"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(failed["lastError"]?.GetValue<string>()));
        Assert.NotNull(failed["nextAttemptAt"]);

        File.Delete(directory);
        Directory.CreateDirectory(directory);
        var done = await DeliveredRunAsync(server, destination, id);
        Assert.Equal(1, done["payload"]!["result"]!["rows"]!.GetValue<int>());
        Assert.Single(Directory.GetFiles(directory, "*.csv"));
    }

    [Fact]
    public async Task a_reader_never_sees_part_of_a_file_while_it_is_written_or_replaced()
    {
        var directory = TempDirectory.Create("atomic");
        var path = Path.Combine(directory, "members.csv");
        string?[][] Rows(string tag) => [.. Enumerable.Range(0, 150_000).Select(i => new string?[] { $"prof_{i}", $"{tag}-{i}", "some text, with a comma" })];
        string[] columns = ["profile_id", "value", "note"];
        using var stop = new CancellationTokenSource();
        var seen = new List<int>();
        var reader = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    // Whatever the name shows must be a whole file: its header, every row and its last line.
                    var lines = await File.ReadAllLinesAsync(path);
                    seen.Add(lines.Length);
                }
                catch (FileNotFoundException)
                {
                    // Not there yet.
                }
            }
        });

        await TableFile.WriteAsync(path, "csv", columns, Rows("first"));
        await TableFile.WriteAsync(path, "csv", columns, Rows("second"));
        await Task.Delay(50);
        stop.Cancel();
        await reader;
        Assert.NotEmpty(seen);
        Assert.All(seen, n => Assert.Equal(150_001, n));
        Assert.Equal("prof_149999,second-149999,\"some text, with a comma\"", (await File.ReadAllLinesAsync(path))[^1]);
        Assert.Equal(["members.csv"], Directory.GetFiles(directory).Select(Path.GetFileName));
    }

    [Fact]
    public async Task only_file_destinations_run_on_demand()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Activation.StartAsync();
        var webhook = await server.CreateDestinationAsync(Activation.Webhook(receiver, events: """["A"]"""));
        var response = await server.Admin.PostAsync($"api/destinations/{webhook}/run", null);
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("type", (await response.Content.ReadFromJsonAsync<JsonObject>())!["field"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.PostAsync("api/destinations/dst_nope/run", null)).StatusCode);
    }

    private static async Task<JsonObject> RunNowAsync(TestServer server, string destination)
    {
        var response = await server.Admin.PostAsync($"api/destinations/{destination}/run", null);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    private static async Task<JsonObject> DeliveredRunAsync(TestServer server, string destination, long id)
    {
        await Activation.EventuallyAsync(async () => (await server.DeliveriesAsync(destination)).Any(d => d["id"]!.GetValue<long>() == id && d["status"]!.GetValue<string>() == "delivered"), $"run {id} delivered");
        return (await server.DeliveriesAsync(destination)).Single(d => d["id"]!.GetValue<long>() == id);
    }

    private static async Task<List<string>> QueryParquetAsync(string file, string sql)
    {
        await using var duck = new DuckDBConnection("Data Source=:memory:");
        await duck.OpenAsync();
        using var command = duck.CreateCommand();
        command.CommandText = $"WITH t AS (SELECT * FROM read_parquet($1)) {sql}";
        command.Parameters.Add(new DuckDBParameter(file));
        using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(string.Join("|", Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "" : reader.GetValue(i).ToString())));
        }

        return rows;
    }
}
