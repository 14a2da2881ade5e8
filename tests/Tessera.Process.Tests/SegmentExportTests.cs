using System.Net;
using System.Text;
using DuckDB.NET.Data;
using Tessera.Testing;

namespace Tessera.Process.Tests;

/// <summary><c>tessera export segment</c> writes an audience's members with their traits, as CSV or Parquet.</summary>
public sealed class SegmentExportTests
{
    [Fact]
    public async Task export_segment_writes_the_members_with_their_traits_as_csv_and_parquet()
    {
        var dir = TempDirectory.Create("export-segment");
        var dataDir = Path.Combine(dir, "data");
        var events = Path.Combine(dir, "events.jsonl");
        await File.WriteAllLinesAsync(events,
        [
            """{"type":"identify","userId":"ann","traits":{"email":"ann@example.com","plan":"pro","seats":12,"name":"Ann, \"the\" admin"},"messageId":"m1"}""",
            """{"type":"identify","userId":"bob","traits":{"plan":"free"},"messageId":"m2"}""",
            """{"type":"identify","userId":"cy","traits":{"plan":"pro"},"messageId":"m3"}""",
        ]);
        Assert.Equal(0, (await TesseraProcess.RunAsync("import", "events", events, "--data-dir", dataDir)).ExitCode);

        string segmentId;
        await using (var tessera = await TesseraProcess.StartServeAsync(dataDir))
        {
            using var admin = Http.Admin(tessera.BaseAddress);
            var created = await admin.PostAsync("api/segments", new StringContent("""{"name":"Pro plan","definition":{"trait":"plan","op":"eq","value":"pro"}}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            segmentId = System.Text.Json.Nodes.JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        }

        var csvFile = Path.Combine(dir, "pro.csv");
        var csv = await TesseraProcess.RunAsync("export", "segment", segmentId, "--out", csvFile, "--data-dir", dataDir);
        Assert.Equal(0, csv.ExitCode);
        Assert.Contains($"exported 2 members of {segmentId} (Pro plan)", csv.Output, StringComparison.Ordinal);
        var lines = await File.ReadAllLinesAsync(csvFile);
        Assert.Equal("profile_id,identifiers.email,identifiers.user_id,traits.email,traits.name,traits.plan,traits.seats", lines[0]);
        Assert.Equal(3, lines.Length);
        Assert.Contains(lines, l => l.EndsWith(",ann@example.com,ann,ann@example.com,\"Ann, \"\"the\"\" admin\",pro,12", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.EndsWith(",,cy,,,pro,", StringComparison.Ordinal));

        // By name too, and as Parquet: read back with DuckDB.
        var parquetFile = Path.Combine(dir, "pro's members.parquet");
        Assert.Equal(0, (await TesseraProcess.RunAsync("export", "segment", "Pro plan", "--out", parquetFile, "--data-dir", dataDir)).ExitCode);
        await using var duck = new DuckDBConnection("Data Source=:memory:");
        await duck.OpenAsync();
        using var read = duck.CreateCommand();
        read.CommandText = "SELECT \"identifiers.user_id\", \"traits.seats\", \"traits.name\" FROM read_parquet($1) ORDER BY 1";
        read.Parameters.Add(new DuckDBParameter(parquetFile));
        using var reader = await read.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync()) { rows.Add($"{reader.GetString(0)}|{(reader.IsDBNull(1) ? "" : reader.GetString(1))}|{(reader.IsDBNull(2) ? "" : reader.GetString(2))}"); }
        Assert.Equal(["ann|12|Ann, \"the\" admin", "cy||"], rows);

        var unknown = await TesseraProcess.RunAsync("export", "segment", "No such audience", "--out", csvFile, "--data-dir", dataDir);
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("no audience 'No such audience'", unknown.Output, StringComparison.Ordinal);
        var badExtension = await TesseraProcess.RunAsync("export", "segment", segmentId, "--out", Path.Combine(dir, "pro.xlsx"), "--data-dir", dataDir);
        Assert.Equal(2, badExtension.ExitCode);
    }
}
