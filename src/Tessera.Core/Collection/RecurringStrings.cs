using System.Numerics;
using System.Text;

namespace Tessera.Core.Collection;

/// <summary>
/// Strings that recur from message to message (source ids, event names), each decoded from UTF-8 once: events wait in
/// memory for the store's commit, and a string of their own each for the same few values was garbage made twice, as
/// allocation and as what each collection copies. A direct-mapped cache of <c>slots</c> entries (rounded up to a power
/// of two) keyed by a hash of the bytes: a lookup is one hash and one comparison, and many distinct values only evict
/// one another instead of being searched through. Not thread-safe (one per decoding, or per thread).
/// </summary>
public sealed class RecurringStrings(int slots)
{
    /// <summary>Longer values are decoded each time: they rarely recur, and hashing them costs more than decoding.</summary>
    private const int MaxLength = 128;

    private readonly (byte[] Utf8, string Value)[] _entries = new (byte[], string)[BitOperations.RoundUpToPowerOf2((uint)Math.Max(slots, 1))];

    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxLength) { return Encoding.UTF8.GetString(utf8); }
        ref var entry = ref _entries[Fnv1a(utf8) & (uint)(_entries.Length - 1)];
        if (entry.Utf8 is { } cached && utf8.SequenceEqual(cached)) { return entry.Value; }
        var value = Encoding.UTF8.GetString(utf8);
        entry = (utf8.ToArray(), value);
        return value;
    }

    // Fixed, not randomised per process (as string hashes are): which values share a slot is the same on every run.
    private static uint Fnv1a(ReadOnlySpan<byte> bytes)
    {
        var hash = 2166136261u;
        foreach (var b in bytes) { hash = (hash ^ b) * 16777619u; }
        return hash;
    }
}
