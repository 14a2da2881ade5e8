using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Process.Tests;

/// <summary><c>tessera import profiles</c> joins CRM records into the identity graph; <c>tessera export identities</c> writes the result.</summary>
public sealed class ProfileImportExportTests
{
    [Fact]
    public async Task crm_records_join_web_and_store_records_into_one_profile_and_export_shows_it()
    {
        var dir = TempDirectory.Create("crm");
        var dataDir = Path.Combine(dir, "data");
        var web = Path.Combine(dir, "web.jsonl");
        await File.WriteAllLinesAsync(web,
        [
            """{"type":"identify","anonymousId":"cookie-1","traits":{"email":"ann@example.com"},"messageId":"w1"}""",
            """{"type":"track","anonymousId":"till-7","event":"Order Completed","context":{"traits":{"phone":"+1 415 555 0100"}},"properties":{"revenue":20},"messageId":"s1"}""",
        ]);
        var crm = Path.Combine(dir, "crm.csv");
        await File.WriteAllTextAsync(crm, """
            Email,Mobile,First,Tier,Updated
            Ann@Example.com,(415) 555-0100,Ann,gold,2026-02-01T00:00:00Z
            not-an-email,call me,Bob,silver,2026-02-01T00:00:00Z
            ,,Nobody,bronze,2026-02-01T00:00:00Z
            cy@example.com,,Cy,silver,2026-02-01T00:00:00Z
            """);

        Assert.Equal(0, (await TesseraProcess.RunAsync("import", "events", web, "--data-dir", dataDir)).ExitCode);
        var (exitCode, output) = await TesseraProcess.RunAsync("import", "profiles", crm, "--data-dir", dataDir, "--source", "crm",
            "--map", "email=Email,phone=Mobile,first_name=First,tier=Tier,timestamp=Updated");
        var again = await TesseraProcess.RunAsync("import", "profiles", crm, "--data-dir", dataDir, "--source", "crm",
            "--map", "email=Email,phone=Mobile,first_name=First,tier=Tier,timestamp=Updated");

        Assert.Equal(1, exitCode);
        Assert.Contains("imported 2, rejected 2", output, StringComparison.Ordinal);
        Assert.Contains("imported 0, rejected 2, duplicates skipped 2", again.Output, StringComparison.Ordinal);
        var rejected = (await File.ReadAllLinesAsync(crm + ".rejected.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal([3L, 4L], rejected.Select(r => r["line"]!.GetValue<long>()));
        Assert.Contains("not an email address", rejected[0]["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("not a phone number", rejected[0]["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("no identifier column has a value", rejected[1]["reason"]!.GetValue<string>());

        var export = Path.Combine(dir, "identities.csv");
        var exported = await TesseraProcess.RunAsync("export", "identities", "--out", export, "--data-dir", dataDir);
        Assert.Equal(0, exported.ExitCode);
        var rows = (await File.ReadAllLinesAsync(export)).Skip(1).Select(l => l.Split(',')).ToList();
        var ann = rows.Single(r => r[1] == "email" && r[2] == "ann@example.com")[0];
        Assert.Equal(
            ["anonymous_id:cookie-1", "anonymous_id:till-7", "email:ann@example.com", "phone:+14155550100"],
            rows.Where(r => r[0] == ann).Select(r => $"{r[1]}:{r[2]}").Order());
        Assert.Equal(["email:cy@example.com"], rows.Where(r => r[0] != ann).Select(r => $"{r[1]}:{r[2]}"));

        await using var tessera = await TesseraProcess.StartServeAsync(dataDir);
        using var admin = Http.Admin(tessera.BaseAddress);
        var profile = (await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<JsonObject>(admin, "api/profiles?identifier=email:ann@example.com"))!;
        Assert.Equal("gold", profile["traits"]!["tier"]!.GetValue<string>());
        Assert.Equal("Ann", profile["traits"]!["first_name"]!.GetValue<string>());
    }

    [Fact]
    public async Task profile_import_without_an_identifier_column_is_refused_naming_the_option()
    {
        var dir = TempDirectory.Create("crm-nomap");
        var crm = Path.Combine(dir, "crm.csv");
        await File.WriteAllTextAsync(crm, "First,Tier\nAnn,gold\n");

        var (exitCode, output) = await TesseraProcess.RunAsync("import", "profiles", crm, "--data-dir", dir, "--source", "crm", "--map", "first_name=First,tier=Tier");

        Assert.Equal(2, exitCode);
        Assert.Contains("--map: map at least one identifier type", output, StringComparison.Ordinal);
    }
}
