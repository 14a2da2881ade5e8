namespace Tessera.Storage.Sources;

/// <summary>Sources and their write keys.</summary>
public interface ISourceStore
{
    Task<Source> CreateSourceAsync(string name, string workspace, string writeKey, CancellationToken cancellationToken);
    Task<IReadOnlyList<Source>> ListSourcesAsync(CancellationToken cancellationToken);
    Task<Source?> GetSourceAsync(string id, CancellationToken cancellationToken);
    Task<Source?> FindSourceByWriteKeyAsync(string writeKey, CancellationToken cancellationToken);

    /// <summary>Revokes the source's key: its events stay, new ones get 401. Returns false when no such source.</summary>
    Task<bool> RevokeSourceAsync(string id, CancellationToken cancellationToken);
}
