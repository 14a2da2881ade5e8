using Microsoft.Extensions.DependencyInjection;
using Tessera.Storage.DuckDb;
using Tessera.Storage.Events;
using Tessera.Storage.Postgres;
using Tessera.Storage.Settings;
using Tessera.Storage.Sources;

namespace Tessera.Storage;

/// <summary>Chooses the store: <c>services.AddTesseraStorage(b =&gt; b.UseDuckDb(path))</c>.</summary>
public sealed class TesseraStorageBuilder
{
    internal Func<IServiceProvider, ITesseraStore>? Factory { get; private set; }

    public TesseraStorageBuilder UseDuckDb(DuckDbStoreOptions options)
    {
        Factory = _ => new DuckDbStore(options);
        return this;
    }

    /// <summary>The shared store: a PostgreSQL database that several Tessera processes may use at once.</summary>
    public TesseraStorageBuilder UsePostgres(PostgresStoreOptions options)
    {
        Factory = _ => new PostgresStore(options);
        return this;
    }

    /// <summary>Any other store (for example PostgreSQL) given by its factory.</summary>
    public TesseraStorageBuilder Use(Func<IServiceProvider, ITesseraStore> factory)
    {
        Factory = factory;
        return this;
    }
}

public static class StorageServiceCollectionExtensions
{
    /// <summary>Registers one store instance under every store interface. The caller opens it (<see cref="ITesseraStore.OpenAsync"/>).</summary>
    public static IServiceCollection AddTesseraStorage(this IServiceCollection services, Action<TesseraStorageBuilder> configure)
    {
        var builder = new TesseraStorageBuilder();
        configure(builder);
        var factory = builder.Factory ?? throw new InvalidOperationException("No store chosen: call UseDuckDb, UsePostgres or Use.");
        services.AddSingleton(factory);
        services.AddSingleton<IEventStore>(sp => sp.GetRequiredService<ITesseraStore>());
        services.AddSingleton<ISourceStore>(sp => sp.GetRequiredService<ITesseraStore>());
        services.AddSingleton<ISettingsStore>(sp => sp.GetRequiredService<ITesseraStore>());
        return services;
    }
}
