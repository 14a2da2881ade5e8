using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Process.Tests;

/// <summary><c>tessera import events</c>: the same validation and dedup as the API, a rejected-rows file, a summary line.</summary>
public sealed class ImportCommandTests
{
    [Fact]
    public async Task jsonl_import_stores_valid_rows_and_writes_rejected_ones_with_reasons()
    {
        var dir = TempDirectory.Create("import");
        var file = Path.Combine(dir, "history.jsonl");
        await File.WriteAllLinesAsync(file,
        [
            """{"type":"track","userId":"imp-1","event":"Order Completed","messageId":"imp-a","timestamp":"2024-05-01T10:00:00Z","properties":{"revenue":12}}""",
            """{"type":"identify","userId":"imp-1","traits":{"email":"imp@example.com"},"messageId":"imp-b"}""",
            """{"type":"track","userId":"imp-2","messageId":"imp-c"}""",
            """not json at all""",
            "",
            """{"type":"page","anonymousId":"imp-anon","name":"Home","messageId":"imp-d"}""",
        ]);
        var dataDir = Path.Combine(dir, "data");

        var (exitCode, output) = await TesseraProcess.RunAsync("import", "events", file, "--data-dir", dataDir);

        Assert.Equal(1, exitCode);
        Assert.Contains("imported 3, rejected 2", output, StringComparison.Ordinal);
        var rejected = (await File.ReadAllLinesAsync(file + ".rejected.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal([3L, 4L], rejected.Select(r => r["line"]!.GetValue<long>()));
        Assert.Equal("event", rejected[0]["field"]!.GetValue<string>());
        Assert.Contains("not valid JSON", rejected[1]["reason"]!.GetValue<string>(), StringComparison.Ordinal);

        await using var tessera = await TesseraProcess.StartServeAsync(dataDir);
        using var admin = Http.Admin(tessera.BaseAddress);
        var stored = await Http.StoredMessageIdsAsync(admin);
        Assert.Equal(["imp-a", "imp-b", "imp-d"], stored.Order());
    }

    [Fact]
    public async Task importing_the_same_file_twice_stores_each_message_once()
    {
        var dir = TempDirectory.Create("import-twice");
        var file = Path.Combine(dir, "events.jsonl");
        await File.WriteAllLinesAsync(file, Enumerable.Range(0, 200).Select(i => $$"""{"type":"track","userId":"twice","event":"E","messageId":"twice-{{i}}"}"""));
        var dataDir = Path.Combine(dir, "data");

        var first = await TesseraProcess.RunAsync("import", "events", file, "--data-dir", dataDir);
        var second = await TesseraProcess.RunAsync("import", "events", file, "--data-dir", dataDir);

        Assert.Equal(0, first.ExitCode);
        Assert.Contains("imported 200, rejected 0", first.Output, StringComparison.Ordinal);
        Assert.Contains("imported 0, rejected 0, duplicates skipped 200", second.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(file + ".rejected.jsonl"));
    }

    [Fact]
    public async Task csv_import_maps_columns_to_message_fields()
    {
        var dir = TempDirectory.Create("import-csv");
        var file = Path.Combine(dir, "orders.csv");
        await File.WriteAllTextAsync(file, "Customer,When,Total,Ref\nc-1,2025-01-02T03:04:05Z,19.90,o-1\nc-2,2025-01-03T03:04:05Z,5,o-2\n,2025-01-03T03:04:05Z,7,o-3\n");
        var dataDir = Path.Combine(dir, "data");

        var (exitCode, output) = await TesseraProcess.RunAsync(
            "import", "events", file, "--data-dir", dataDir, "--type", "track",
            "--map", "event=Ref,userId=Customer,timestamp=When,properties.revenue=Total,messageId=Ref");

        Assert.Contains("imported 2, rejected 1", output, StringComparison.Ordinal);
        Assert.Equal(1, exitCode);
        await using var tessera = await TesseraProcess.StartServeAsync(dataDir);
        using var admin = Http.Admin(tessera.BaseAddress);
        var page = (await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<JsonObject>(admin, "api/events?userId=c-1"))!;
        var e = page["items"]![0]!;
        Assert.Equal(19.90m, e["properties"]!["revenue"]!.GetValue<decimal>());
        Assert.Equal("2025-01-02T03:04:05.000Z", e["timestamp"]!.GetValue<string>());
    }

    [Fact]
    public async Task import_into_a_store_a_running_server_holds_fails_with_a_clear_message()
    {
        var dataDir = TempDirectory.Create("import-locked");
        var file = Path.Combine(dataDir, "one.jsonl");
        await File.WriteAllTextAsync(file, """{"type":"track","userId":"x","event":"E"}""" + "\n");
        await using var tessera = await TesseraProcess.StartServeAsync(dataDir);

        var (exitCode, output) = await TesseraProcess.RunAsync("import", "events", file, "--data-dir", dataDir);

        Assert.Equal(1, exitCode);
        Assert.Contains("in use by another Tessera process", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task csv_without_a_map_is_refused_naming_the_option()
    {
        var dir = TempDirectory.Create("import-nomap");
        var file = Path.Combine(dir, "x.csv");
        await File.WriteAllTextAsync(file, "a,b\n1,2\n");

        var (exitCode, output) = await TesseraProcess.RunAsync("import", "events", file, "--data-dir", dir);

        Assert.Equal(2, exitCode);
        Assert.Contains("--map", output, StringComparison.Ordinal);
    }
}
