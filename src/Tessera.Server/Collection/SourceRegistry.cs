using System.Collections.Concurrent;
using Tessera.Storage;
using Tessera.Storage.Sources;

namespace Tessera.Server.Collection;

/// <summary>
/// Write key → source, cached for a few seconds so the hot path rarely touches the store. A revocation made
/// through this process takes effect at once; one made by another process sharing the store, within the TTL
/// (or, while the store is unavailable, once it is back: meanwhile the last known answer stands).
/// </summary>
public sealed class SourceRegistry(ISourceStore store, TimeProvider time)
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<string, (Source? Source, long ExpiresAt)> _byWriteKey = new();

    public async ValueTask<Source?> FindAsync(string writeKey, CancellationToken cancellationToken)
    {
        var now = time.GetTimestamp();
        var known = _byWriteKey.TryGetValue(writeKey, out var cached);
        if (known && cached.ExpiresAt > now) { return cached.Source; }
        Source? source;
        try
        {
            source = await store.FindSourceByWriteKeyAsync(writeKey, cancellationToken);
        }
        catch (StoreUnavailableException) when (known)
        {
            // The database is down but the journal still takes events: answer from what was known a moment ago.
            return cached.Source;
        }

        _byWriteKey[writeKey] = (source, now + (long)(Ttl.TotalSeconds * time.TimestampFrequency));
        return source;
    }

    public void Forget(string writeKey) => _byWriteKey.TryRemove(writeKey, out _);
}
