using Microsoft.Extensions.DependencyInjection;
using Tessera.Storage.Events;
using Tessera.Storage.Profiles;
using Tessera.Storage.Settings;
using Tessera.Storage.Sources;

namespace Tessera.Storage;

/// <summary>Chooses the store: <c>services.AddTesseraStorage(b =&gt; b.Use(sp =&gt; new DuckDbStore(...)))</c>.</summary>
public sealed class TesseraStorageBuilder
{
    internal Func<IServiceProvider, ITesseraStore>? Factory { get; private set; }

    /// <summary>The store, made by its factory when first needed.</summary>
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
        var factory = builder.Factory ?? throw new InvalidOperationException("No store chosen: call Use.");
        services.AddSingleton(factory);
        services.AddSingleton<IEventStore>(sp => sp.GetRequiredService<ITesseraStore>());
        services.AddSingleton<ISourceStore>(sp => sp.GetRequiredService<ITesseraStore>());
        services.AddSingleton<ISettingsStore>(sp => sp.GetRequiredService<ITesseraStore>());
        services.AddSingleton<IProfileStore>(sp => sp.GetRequiredService<ITesseraStore>());
        return services;
    }
}
