using Tessera.Storage.Activation;
using Tessera.Storage.Audiences;
using Tessera.Storage.Events;
using Tessera.Storage.Journal;
using Tessera.Storage.Journeys;
using Tessera.Storage.Profiles;
using Tessera.Storage.Settings;
using Tessera.Storage.Sources;

namespace Tessera.Storage;

/// <summary>One store (DuckDB file or PostgreSQL database) with everything Tessera keeps.</summary>
public interface ITesseraStore : IEventStore, IProfileStore, IAudienceStore, IAudienceQueries, IActivationStore, IJourneyStore, IExportRunStore, ISourceStore, ISettingsStore, IJournalIndexStore, IAsyncDisposable
{
    /// <summary><c>duckdb</c> or <c>postgres</c>.</summary>
    string Kind { get; }

    /// <summary>Opens the store, brings its schema up to date and loads what the hot path keeps in memory.</summary>
    Task OpenAsync(CancellationToken cancellationToken);

    /// <summary>True when the store answers now; used by <c>/health</c>.</summary>
    Task<bool> IsAvailableAsync(CancellationToken cancellationToken);
}
