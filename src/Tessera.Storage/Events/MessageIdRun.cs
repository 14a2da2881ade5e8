using System.Numerics;
using System.Runtime.InteropServices;

namespace Tessera.Storage.Events;

/// <summary>
/// Part of <see cref="MessageIdIndex"/>: keys it moved out of its table of recent ones, sorted, dense (12 bytes an entry,
/// no free slots) with their receive time to the second. A key's top <see cref="PrefixBits"/> bits are not stored: they
/// are the entry's place in the run (a bucket array of at least 2^16 starts), so an entry's 64 stored bits and its place
/// tell 80 bits of the key apart (a key not held matches one of n entries with a chance of about n / 2^80). The bucket array has one start for every four to eight entries; a lookup reads two
/// starts and scans one bucket. Not thread-safe; <see cref="Dispose"/> frees its memory.
/// </summary>
internal sealed unsafe class MessageIdRun : IDisposable
{
    public const int PrefixBits = 16;
    private const int Groups = 1 << PrefixBits;

    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    private struct Entry
    {
        /// <summary>The key's 64 bits after its prefix (bits 48-111).</summary>
        public ulong Bits;

        /// <summary>The receive time, seconds since 2000, rounded up.</summary>
        public uint Seconds;
    }

    private Entry* _entries;
    private uint* _buckets;
    private int _bucketBits;

    private MessageIdRun(Entry* entries, long count, uint* buckets, int bucketBits, uint minSeconds, uint maxSeconds)
    {
        _entries = entries;
        Count = count;
        _buckets = buckets;
        _bucketBits = bucketBits;
        MinSeconds = minSeconds;
        MaxSeconds = maxSeconds;
    }

    ~MessageIdRun() => Free();

    public long Count { get; private set; }

    public uint MinSeconds { get; private set; }

    public uint MaxSeconds { get; private set; }

    public long Bytes => _buckets is null ? 0 : Count * sizeof(Entry) + BucketArrayBytes(_bucketBits);

    /// <summary>
    /// A run of <paramref name="count"/> sorted values, each a key's top 80 bits followed by 16 zero bits and its seconds
    /// (<see cref="Value"/>), with no two keys alike.
    /// </summary>
    public static MessageIdRun FromSorted(UInt128* values, long count)
    {
        var entries = (Entry*)NativePages.Allocate(count * sizeof(Entry));
        var bucketBits = BucketBitsFor(count);
        var buckets = NewBucketCounts(bucketBits);
        uint min = uint.MaxValue, max = 0;
        for (var i = 0L; i < count; i++)
        {
            var value = values[i];
            var entry = new Entry { Bits = (ulong)(value >> 48), Seconds = (uint)value };
            entries[i] = entry;
            buckets[Bucket(bucketBits, (int)(value >> 112), entry.Bits) + 1]++;
            min = Math.Min(min, entry.Seconds);
            max = Math.Max(max, entry.Seconds);
        }

        return new MessageIdRun(entries, count, Starts(buckets, bucketBits), bucketBits, min, max);
    }

    /// <summary>A key and its seconds as <see cref="FromSorted"/> takes them: sorting these sorts by key.</summary>
    public static UInt128 Value(ulong upper, ushort nextBits, uint seconds) =>
        new(upper, ((ulong)nextBits << 48) | seconds);

    /// <summary>The seconds the key was received at, when the run holds it.</summary>
    public bool TryFind(UInt128 key, out uint seconds)
    {
        var bits = (ulong)(key >> 48);
        var bucket = Bucket(_bucketBits, (int)(key >> (128 - PrefixBits)), bits);
        for (long i = _buckets[bucket], end = _buckets[bucket + 1]; i < end; i++)
        {
            var entry = _entries[i];
            if (entry.Bits < bits) { continue; }
            if (entry.Bits > bits) { break; }
            seconds = entry.Seconds;
            return true;
        }

        seconds = 0;
        return false;
    }

    /// <summary>
    /// Takes <paramref name="newer"/>'s entries into this run (a key in both keeps its later time) and disposes it. In
    /// place: this run's block grows by the other's size (page tables moved, not copied), and the two are merged from
    /// their ends backwards into it, so the memory a merge needs beyond the two runs is the new bucket array.
    /// </summary>
    public void Absorb(MessageIdRun newer)
    {
        var total = Count + newer.Count;
        _entries = (Entry*)NativePages.Resize(_entries, Count * sizeof(Entry), total * sizeof(Entry));
        var bucketBits = BucketBitsFor(total);
        var counts = NewBucketCounts(bucketBits);
        var write = total;
        var mine = Count - 1;
        var theirs = newer.Count - 1;
        for (var prefix = Groups - 1; prefix >= 0; prefix--)
        {
            var mineStart = GroupStart(prefix);
            var theirsStart = newer.GroupStart(prefix);
            while (mine >= mineStart || theirs >= theirsStart)
            {
                Entry entry;
                if (theirs < theirsStart || (mine >= mineStart && _entries[mine].Bits > newer._entries[theirs].Bits))
                {
                    entry = _entries[mine--];
                }
                else if (mine < mineStart || newer._entries[theirs].Bits > _entries[mine].Bits)
                {
                    entry = newer._entries[theirs--];
                }
                else
                {
                    entry = _entries[mine--];
                    entry.Seconds = Math.Max(entry.Seconds, newer._entries[theirs--].Seconds);
                }

                // Never past an entry of this run not yet read: write - 1 >= mine + 1 + theirs + 1 - 1.
                _entries[--write] = entry;
                counts[Bucket(bucketBits, prefix, entry.Bits) + 1]++;
            }
        }

        var count = total - write;
        if (write > 0) { new Span<Entry>(_entries + write, (int)count).CopyTo(new Span<Entry>(_entries, (int)count)); }
        _entries = (Entry*)NativePages.Resize(_entries, total * sizeof(Entry), count * sizeof(Entry));
        NativeMemory.Free(_buckets);
        _buckets = Starts(counts, bucketBits);
        _bucketBits = bucketBits;
        Count = count;
        MinSeconds = Math.Min(MinSeconds, newer.MinSeconds);
        MaxSeconds = Math.Max(MaxSeconds, newer.MaxSeconds);
        newer.Dispose();
    }

    /// <summary>
    /// Drops the entries received before <paramref name="oldestSeconds"/>, in place, and gives their memory back: all of
    /// it at once when even the latest is older (no scan), none when even the earliest is not.
    /// </summary>
    public void DropBefore(uint oldestSeconds)
    {
        if (MinSeconds >= oldestSeconds) { return; }
        if (MaxSeconds < oldestSeconds)
        {
            Free();
            return;
        }

        var survivors = 0L;
        for (var i = 0L; i < Count; i++)
        {
            if (_entries[i].Seconds >= oldestSeconds) { survivors++; }
        }

        var bucketBits = BucketBitsFor(survivors);
        var counts = NewBucketCounts(bucketBits);
        var write = 0L;
        uint min = uint.MaxValue, max = 0;
        for (var prefix = 0; prefix < Groups; prefix++)
        {
            for (long i = GroupStart(prefix), end = GroupStart(prefix + 1); i < end; i++)
            {
                var entry = _entries[i];
                if (entry.Seconds < oldestSeconds) { continue; }
                _entries[write++] = entry;
                counts[Bucket(bucketBits, prefix, entry.Bits) + 1]++;
                min = Math.Min(min, entry.Seconds);
                max = Math.Max(max, entry.Seconds);
            }
        }

        _entries = (Entry*)NativePages.Resize(_entries, Count * sizeof(Entry), survivors * sizeof(Entry));
        NativeMemory.Free(_buckets);
        _buckets = Starts(counts, bucketBits);
        _bucketBits = bucketBits;
        Count = survivors;
        (MinSeconds, MaxSeconds) = survivors == 0 ? (0u, 0u) : (min, max);
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    /// <summary>At least 2^16 buckets (the prefix must be implied), else one for every four to eight entries.</summary>
    private static int BucketBitsFor(long count) => Math.Max(PrefixBits, BitOperations.Log2((ulong)Math.Max(count, 1)) - 2);

    private static long BucketArrayBytes(int bucketBits) => ((1L << bucketBits) + 1) * sizeof(uint);

    private static int Bucket(int bucketBits, int prefix, ulong bits)
    {
        var extra = bucketBits - PrefixBits;
        return extra == 0 ? prefix : (prefix << extra) | (int)(bits >> (64 - extra));
    }

    /// <summary>Where the entries with this prefix start (<see cref="Groups"/> gives the end).</summary>
    private long GroupStart(int prefix) => _buckets[(long)prefix << (_bucketBits - PrefixBits)];

    private static uint* NewBucketCounts(int bucketBits) => (uint*)NativeMemory.AllocZeroed((nuint)((1L << bucketBits) + 1), sizeof(uint));

    /// <summary>Counts at [bucket + 1] turned into starts at [bucket], in place.</summary>
    private static uint* Starts(uint* counts, int bucketBits)
    {
        var n = 1L << bucketBits;
        for (var i = 1L; i <= n; i++) { counts[i] += counts[i - 1]; }
        return counts;
    }

    private void Free()
    {
        if (_buckets is null) { return; }
        NativePages.Free(_entries, Count * sizeof(Entry));
        NativeMemory.Free(_buckets);
        _entries = null;
        _buckets = null;
        Count = 0;
    }
}
