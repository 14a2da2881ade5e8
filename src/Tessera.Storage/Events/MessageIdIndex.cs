using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace Tessera.Storage.Events;

/// <summary>
/// The (source, messageId) pairs seen within the dedup window, as 128-bit hashes with their receive time.
/// A 128-bit hash keeps 32 bytes per entry instead of two strings; a false duplicate would need a collision
/// of XxHash128, which is not a practical risk. Not thread-safe: its owner serialises access.
/// </summary>
public sealed class MessageIdIndex(TimeSpan window)
{
    private readonly Dictionary<UInt128, long> _seen = new();
    private long _lastSweepTicks = DateTimeOffset.UtcNow.UtcTicks;

    public TimeSpan Window { get; } = window;

    /// <summary>The pairs held (a gauge may read it from another thread: a count, not a snapshot).</summary>
    public int Count => _seen.Count;

    public static UInt128 Key(string sourceId, string messageId)
    {
        var length = Encoding.UTF8.GetMaxByteCount(sourceId.Length + messageId.Length + 1);
        Span<byte> buffer = length <= 1024 ? stackalloc byte[length] : new byte[length];
        var written = Encoding.UTF8.GetBytes(sourceId, buffer);
        buffer[written++] = 0;
        written += Encoding.UTF8.GetBytes(messageId, buffer[written..]);
        return XxHash128.HashToUInt128(buffer[..written]);
    }

    /// <summary>
    /// True when a message with the key, received at <paramref name="receivedAt"/>, is a resend: one with the key was
    /// stored less than the window before it (or after it).
    /// </summary>
    public bool Contains(UInt128 key, DateTimeOffset receivedAt) =>
        _seen.TryGetValue(key, out var ticks) && receivedAt.UtcTicks - ticks < Window.Ticks;

    public void Add(UInt128 key, DateTimeOffset receivedAt)
    {
        ref var ticks = ref CollectionsMarshal.GetValueRefOrAddDefault(_seen, key, out _);
        ticks = Math.Max(ticks, receivedAt.UtcTicks);
    }

    /// <summary>Forgets every pair (before reloading them from the store after a failed commit).</summary>
    public void Clear() => _seen.Clear();

    /// <summary>Drops entries older than the window, at most once an hour, so memory follows the window, not history.</summary>
    public void SweepIfDue(DateTimeOffset now)
    {
        if (now.UtcTicks - _lastSweepTicks < TimeSpan.TicksPerHour) { return; }
        _lastSweepTicks = now.UtcTicks;
        var oldest = now.UtcTicks - Window.Ticks;
        foreach (var (key, ticks) in _seen)
        {
            if (ticks < oldest) { _seen.Remove(key); }
        }
    }
}
