using System.Security.Cryptography;
using System.Text.Json;
using Tessera.Core.Collection;
using Tessera.Core.Demo;
using Tessera.Server.Collection;
using Tessera.Server.Management;
using Tessera.Storage;

namespace Tessera.Server.Hosting;

/// <summary>
/// Runs before the server listens: opens the store (migrating it), replays the journal into it, makes sure an admin token and a write key
/// exist, seeds the demo data when asked, and prints where to send events.
/// </summary>
public sealed partial class StoreBootstrap(ITesseraStore store, JournalIndexer journal, TesseraOptions options, AdminToken adminToken, TimeProvider clock, ILogger<StoreBootstrap> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // Audience windows count back from the server's clock, the one journeys and deliveries read too.
        store.Engine.Clock = clock;
        await store.OpenAsync(cancellationToken);
        // Every event acknowledged before the last stop or crash is in the store before anything else happens.
        await journal.RecoverAsync(cancellationToken);

        string? shownToken = null;
        if (options.AdminToken is { Length: > 0 } configured)
        {
            adminToken.Set(AdminToken.Hash(configured));
        }
        else
        {
            var generated = "adm_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));
            var hash = await store.SetSettingIfAbsentAsync(AdminToken.SettingKey, AdminToken.Hash(generated), cancellationToken);
            adminToken.Set(hash);
            if (hash == AdminToken.Hash(generated)) { shownToken = generated; }
        }

        var sources = await store.ListSourcesAsync(cancellationToken);
        string? writeKey = null;
        if (options.WriteKey is { Length: > 0 } wanted)
        {
            writeKey = wanted;
            var existing = await store.FindSourceByWriteKeyAsync(wanted, cancellationToken);
            if (existing is null)
            {
                try
                {
                    await store.CreateSourceAsync("default", "default", wanted, cancellationToken);
                }
                catch (StoreException)
                {
                    // Another process sharing the store may have created it a moment ago: then what we wanted exists.
                    if (await store.FindSourceByWriteKeyAsync(wanted, cancellationToken) is null) { throw; }
                }
            }
        }
        else if (sources.Count == 0)
        {
            writeKey = (await store.CreateSourceAsync("default", "default", SourcesApi.NewWriteKey(), cancellationToken)).WriteKey;
        }
        else
        {
            writeKey = sources.FirstOrDefault(s => !s.IsRevoked)?.WriteKey;
        }

        var seeded = 0;
        if (options.Demo && (await store.GetStatsAsync(cancellationToken)).Events == 0)
        {
            seeded = await SeedDemoAsync(cancellationToken);
        }

        if (options.PrintBanner) { PrintBanner(writeKey, shownToken, seeded); }
        LogStarted(logger, store.Kind, options.Urls);
        if (store.Kind == "duckdb" && Storage.DuckDb.DuckDbAllocator.Describe() is { } allocator) { LogAllocator(logger, allocator); }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task<int> SeedDemoAsync(CancellationToken cancellationToken)
    {
        var source = (await store.ListSourcesAsync(cancellationToken)).FirstOrDefault(s => s.Name == "demo")
            ?? await store.CreateSourceAsync("demo", "default", SourcesApi.NewWriteKey(), cancellationToken);
        var now = DateTimeOffset.UtcNow;
        var events = new List<CollectedEvent>();
        foreach (var json in DemoData.Messages(now))
        {
            using var document = JsonDocument.Parse(json);
            if (MessageValidator.TryValidate(document.RootElement, null, source.Id, now, null, out var collected, out _)) { events.Add(collected!); }
        }

        // Oldest first, so the log's order follows the story.
        events.Sort((a, b) => a.Timestamp.CompareTo(b.Timestamp));
        return (await store.AppendAsync(events, cancellationToken)).Stored;
    }

    private void PrintBanner(string? writeKey, string? shownToken, int seeded)
    {
        var url = options.Urls.Split(';')[0].TrimEnd('/');
        Console.WriteLine($"""

            Tessera is running on {url} ({store.Kind} store{(store.Kind == "duckdb" ? $" in {Path.GetFullPath(options.DataDir)}" : "")})
              send events:   POST {url}/v1/track, /v1/identify, /v1/batch ...  (Segment's HTTP API)
              write key:     {writeKey ?? "(none active: create one with POST /api/sources)"}
              admin token:   {shownToken ?? (options.AdminToken is { Length: > 0 } ? "(from TESSERA_ADMIN_TOKEN)" : "(set on first start and shown then; set TESSERA_ADMIN_TOKEN to choose one)")}
              read back:     GET {url}/api/events  with  Authorization: Bearer <admin token>
              a customer:    GET {url}/api/profiles?identifier={(options.Demo ? $"email:{DemoData.SampleEmail()}" : "TYPE:VALUE  (e.g. email:ann@example.com)")}
            {(seeded > 0 ? $"  demo data:     {seeded} events from {DemoData.Describe(300)}\n" : "")}
            """);
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Tessera started on the {Store} store, listening on {Urls}")]
    private static partial void LogStarted(ILogger logger, string store, string urls);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "DuckDB's allocator gives freed memory back with {Options} (DUCKDB_JE_MALLOC_CONF)")]
    private static partial void LogAllocator(ILogger logger, string options);
}
