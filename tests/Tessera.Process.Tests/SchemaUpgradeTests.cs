using Tessera.Testing;

namespace Tessera.Process.Tests;

/// <summary>
/// A schema upgrade at start-up can copy whole tables (minutes at tens of millions of events) before the server listens:
/// the commands say so, step by step, instead of starting silently.
/// </summary>
public sealed class SchemaUpgradeTests
{
    /// <summary>
    /// <c>tessera import</c> into a new directory says it created the store; <c>tessera serve</c> on a store one step
    /// behind (its last step's record removed, as a store the release before left it) announces the upgrade before it
    /// starts, logs the step with its duration and the schema reached, and serves every event the store held.
    /// </summary>
    [Fact]
    public async Task a_store_upgraded_at_start_up_is_announced_with_each_step_and_its_duration()
    {
        var dir = TempDirectory.Create("upgrade");
        var file = Path.Combine(dir, "events.jsonl");
        await File.WriteAllLinesAsync(file, Enumerable.Range(0, 50).Select(i => $$$"""{"type":"track","userId":"up-{{{i % 7}}}","event":"E","messageId":"up-{{{i}}}","properties":{"n":{{{i}}}}}"""));
        var dataDir = Path.Combine(dir, "data");
        var storeFile = Path.Combine(dataDir, "tessera.duckdb");

        var (exitCode, output) = await TesseraProcess.RunAsync("import", "events", file, "--data-dir", dataDir);

        Assert.Equal(0, exitCode);
        Assert.Contains("Created the store ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Upgrading the store", output, StringComparison.Ordinal);
        var latest = Convert.ToInt32(await DuckDbFile.ScalarAsync(storeFile, "SELECT max(version) FROM schema_migrations"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains($" at schema {latest}", output, StringComparison.Ordinal);
        var description = (string?)await DuckDbFile.ScalarAsync(storeFile, $"SELECT description FROM schema_migrations WHERE version = {latest}");
        await DuckDbFile.ScalarAsync(storeFile, $"DELETE FROM schema_migrations WHERE version = {latest}");

        await using var tessera = await TesseraProcess.StartServeAsync(dataDir);

        var log = tessera.Output;
        var announced = log.IndexOf($"from schema {latest - 1} to {latest} (1 steps)", StringComparison.Ordinal);
        var step = log.IndexOf($"Schema step {latest} ({description}) applied in ", StringComparison.Ordinal);
        var reached = log.IndexOf($" is at schema {latest}, upgraded in ", StringComparison.Ordinal);
        Assert.True(announced >= 0 && step > announced && reached > step, log);
        using var admin = Http.Admin(tessera.BaseAddress);
        Assert.Equal(50, (await Http.StoredMessageIdsAsync(admin)).Count);
    }
}
