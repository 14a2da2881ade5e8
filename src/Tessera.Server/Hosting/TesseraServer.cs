using Tessera.Core.Identity;
using Tessera.Core.Profiles;
using Tessera.Server.Activation;
using Tessera.Server.Collection;
using Tessera.Server.Journeys;
using Tessera.Server.Management;
using Tessera.Storage;
using Tessera.Storage.DuckDb;
using Tessera.Storage.Postgres;

namespace Tessera.Server.Hosting;

/// <summary>Builds the Tessera web application. The CLI's <c>serve</c>, the tests and the benchmarks all host it through here.</summary>
public static class TesseraServer
{
    /// <param name="configureStorage">Chooses the store; null means the one <paramref name="options"/> names.</param>
    /// <param name="clock">The server's clock (receive times, audience windows, retries, journey waits); null for the system's. Tests pass a fake one to prove a one-hour wait without waiting an hour.</param>
    public static WebApplication Build(TesseraOptions options, Action<TesseraStorageBuilder>? configureStorage = null, string[]? args = null, TimeProvider? clock = null)
    {
        var builder = WebApplication.CreateSlimBuilder(args ?? []);
        builder.WebHost.UseUrls(options.Urls);
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(30));

        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(clock ?? TimeProvider.System);
        builder.Services.AddTesseraStorage(configureStorage ?? (b => UseConfiguredStore(b, options)));
        builder.Services.AddSingleton<AdminToken>();
        builder.Services.AddSingleton(new ComputedTraitsApi.ConfiguredNames(
            ConfiguredComputedTraits(options).Select(d => d.Name).ToHashSet(StringComparer.Ordinal)));
        builder.Services.AddSingleton<SourceRegistry>();
        // Registered in this order on purpose: the store opens (and the journal is replayed into it) before the
        // indexer and the writer start; on shutdown the web server finishes its in-flight requests first, then the
        // writer drains its queue into the journal, then the indexer drains the journal into the store.
        builder.Services.AddHostedService<StoreBootstrap>();
        builder.Services.AddSingleton<JournalIndexer>();
        builder.Services.AddSingleton<Storage.Journal.IJournalIndexStore>(sp => sp.GetRequiredService<ITesseraStore>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<JournalIndexer>());
        builder.Services.AddSingleton<EventWriter>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EventWriter>());
        builder.Services.AddHostedService<AudienceTicker>();
        // Registered last, so it stops first: deliveries in flight finish while the store is still open.
        builder.Services.AddSingleton<ActivationService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ActivationService>());
        builder.Services.AddHostedService<FileExportScheduler>();
        // After activation, so it stops before it: no run moves while the outbox is shutting down.
        builder.Services.AddSingleton<JourneyService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<JourneyService>());
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<StoreUnavailableHandler>();
        builder.Services.AddCors(c => c.AddPolicy(CollectionApi.CorsPolicy, p => p
            .SetIsOriginAllowed(_ => true).AllowAnyHeader().AllowAnyMethod().AllowCredentials()));

        var app = builder.Build();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseCors();
        app.MapHealthApi();
        app.MapCollectionApi();
        var api = app.MapGroup("/api").AddEndpointFilter(AdminToken.RequireAsync);
        api.MapSourcesApi();
        // Everything that reads events or profiles first waits for the store to hold what was acknowledged before it.
        api.MapGroup("").AddEndpointFilter(ReadBarrier.WaitForIndexAsync).MapEventsApi().MapProfilesApi().MapIdentityApi().MapComputedTraitsApi().MapAudiencesApi().MapDestinationsApi().MapJourneysApi();
        return app;
    }

    private static void UseConfiguredStore(TesseraStorageBuilder builder, TesseraOptions options) => builder.Use(services => CreateStore(options, services.GetService<ILoggerFactory>()));

    /// <summary>
    /// <paramref name="value"/> when at least <paramref name="least"/> (of <paramref name="unit"/>, when the flag has
    /// one); else the error that names the flag which sets it.
    /// </summary>
    private static int AtLeast(int value, int least, string flag, string? unit = "MB") =>
        value >= least ? value : throw new ArgumentException($"{flag}: must be at least {least}{(unit is null ? "" : $" ({unit})")}, got {value}.");

    /// <summary>The least DuckDB memory cap the server takes, against a slip of the finger; measured were 96-256 MB (the store's tests run DuckDB at 16).</summary>
    private const int MinDuckDbMemoryLimitMb = 32;

    /// <summary>
    /// The store <paramref name="options"/> names, not yet opened, logging what it does at open (a schema upgrade's steps)
    /// to <paramref name="loggers"/>. Commands that work on the store without a server use this.
    /// </summary>
    public static ITesseraStore CreateStore(TesseraOptions options, ILoggerFactory? loggers = null)
    {
        var engine = CreateEngine(options);
        return options.Store switch
        {
            "duckdb" => new DuckDbStore(new DuckDbStoreOptions(options.DuckDbPath) { DedupWindow = options.DedupWindow, MemoryLimitMb = AtLeast(options.DuckDbMemoryLimitMb, MinDuckDbMemoryLimitMb, "--duckdb-memory-mb"), CheckpointThresholdMb = AtLeast(options.DuckDbCheckpointThresholdMb, 1, "--duckdb-checkpoint-mb"), Threads = AtLeast(options.DuckDbThreads, 1, "--duckdb-threads", unit: null), BackgroundNice = options.BackgroundNice, ReresolveMemoryLimitMb = options.DuckDbReresolveMemoryLimitMb, BulkCommitEvents = AtLeast(options.DuckDbBulkCommitEvents, 0, "--duckdb-bulk-commit-events", unit: null), BulkCommitWindow = options.DuckDbBulkCommitWindow, CommitDelay = options.CommitDelay, Logger = StoreLogger<DuckDbStore>(loggers) }, engine),
            "postgres" => new PostgresStore(
                new PostgresStoreOptions(options.Postgres is { Length: > 0 } cs
                    ? cs
                    : throw new ArgumentException("--postgres: --store postgres needs an Npgsql connection string, e.g. --postgres \"Host=db;Username=tessera;Password=...;Database=tessera\"."))
                {
                    DedupWindow = options.DedupWindow,
                    Logger = StoreLogger<PostgresStore>(loggers),
                },
                engine),
            _ => throw new ArgumentException($"--store: '{options.Store}' is not a store Tessera knows; use duckdb or postgres."),
        };
    }

    private static ILogger StoreLogger<TStore>(ILoggerFactory? loggers) => (ILogger?)loggers?.CreateLogger<TStore>() ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>The profile engine with the configured rules; a bad rules file stops start-up with a message naming the entry.</summary>
    public static ProfileEngine CreateEngine(TesseraOptions options)
    {
        var rules = ReadConfiguration(options.IdentityRulesFile, "--identity-rules", IdentityRules.Parse) ?? IdentityRules.Default;
        var profileRules = ReadConfiguration(options.ProfileRulesFile, "--profile-rules", ProfileRules.Parse) ?? ProfileRules.Default;
        var engine = new ProfileEngine(rules, profileRules);
        foreach (var definition in ConfiguredComputedTraits(options)) { engine.DefineComputed(definition); }
        return engine;
    }

    /// <summary>The computed traits of the configuration file, checked; a bad one stops start-up naming it.</summary>
    public static IReadOnlyList<ComputedTraitDefinition> ConfiguredComputedTraits(TesseraOptions options) =>
        ReadConfiguration(options.ComputedTraitsFile, "--computed-traits", json =>
        {
            var definitions = System.Text.Json.JsonSerializer.Deserialize<List<ComputedTraitDefinition>>(json, Core.Conditions.ConditionJson.Options) ?? [];
            for (var i = 0; i < definitions.Count; i++)
            {
                if (definitions[i].Problem() is { } problem) { throw new FormatException($"[{i}].{problem}"); }
            }

            return definitions;
        }) ?? [];

    /// <summary>Reads and parses a configuration file; any problem stops start-up with the option and file named.</summary>
    private static T? ReadConfiguration<T>(string? file, string option, Func<string, T> parse) where T : class
    {
        if (file is null) { return null; }
        try
        {
            return parse(File.ReadAllText(file));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or System.Text.Json.JsonException)
        {
            throw new ArgumentException($"{option}: {file}: {e.Message}", e);
        }
    }
}
