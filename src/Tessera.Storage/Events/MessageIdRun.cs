using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Tessera.Storage.Events;

/// <summary>
/// Part of <see cref="MessageIdIndex"/>: keys it moved out of its table of recent ones, sorted, with their receive time
/// to the second. The entries are in a file (16 bytes each: the key's top 80 bits, its seconds); in memory is only what
/// tells a lookup whether to read it: one start for every 16 to 32 entries (a bucket: the key's top bits) and each
/// entry's next 12 bits (its tag: a byte and a half-byte), 1.6-1.75 bytes an entry (2.3-2.5 with 16-bit tags in
/// buckets of 8 to 16 until 2026-12-07). A lookup reads two starts and scans its bucket's tags; only a tag that matches
/// reads an entry from the file, so a key not held (every new message) reads it with a chance of about 24 / 2^12
/// (0.6 %, a <c>pread</c> of 16 bytes from the page cache, ~1 µs), and a key held (a resend) once. A key not held
/// matches one of n entries on all 80 bits with a chance of about n / 2^80. The file is unlinked as soon as it is made
/// (on Windows, deleted when closed): a crash leaves nothing behind, the index is rebuilt from the store. Its pages are
/// the kernel's page cache, not the process's memory.
/// Immutable once made: lookups (<see cref="TryFind"/>) from one thread may run while another reads the run into a
/// merge or a sweep (<see cref="Merge"/>, <see cref="Without"/>: both only read it); <see cref="Dispose"/>, which frees
/// its memory and closes the file, must wait for both.
/// </summary>
internal sealed unsafe class MessageIdRun : IDisposable
{
    private const int ValueBytes = 16;
    private const int TagBits = 12;
    private const int MinBucketBits = 4;
    private const int MaxBucketBits = 64 - TagBits;
    private const int StreamValues = 4096;

    private readonly SafeFileHandle _file;
    private readonly int _bucketBits;
    private byte* _tagsLow;
    private byte* _tagsHigh;
    private uint* _buckets;

    private MessageIdRun(SafeFileHandle file, long count, byte* tagsLow, byte* tagsHigh, uint* buckets, int bucketBits, uint minSeconds, uint maxSeconds)
    {
        _file = file;
        Count = count;
        _tagsLow = tagsLow;
        _tagsHigh = tagsHigh;
        _buckets = buckets;
        _bucketBits = bucketBits;
        MinSeconds = minSeconds;
        MaxSeconds = maxSeconds;
    }

    ~MessageIdRun() => Free();

    public long Count { get; }

    public uint MinSeconds { get; }

    public uint MaxSeconds { get; }

    /// <summary>The run's memory: the tags and the bucket starts.</summary>
    public long Bytes => _buckets is null ? 0 : Count + HighBytes(Count) + BucketArrayBytes(_bucketBits);

    /// <summary>Entries read from the file by lookups (<see cref="TryFind"/>): a resend's, or a tag that matched by chance.</summary>
    public long FileReads { get; private set; }

    /// <summary>The run's file.</summary>
    public long FileBytes => _buckets is null ? 0 : Count * ValueBytes;

    /// <summary>A key's top 80 bits, 16 zero bits and its seconds: sorting these sorts by key.</summary>
    public static UInt128 Value(ulong upper, ushort nextBits, uint seconds) =>
        new(upper, ((ulong)nextBits << 48) | seconds);

    /// <summary>A run in <paramref name="directory"/> of <paramref name="count"/> sorted values (<see cref="Value"/>), no two keys alike.</summary>
    public static MessageIdRun FromSorted(string directory, UInt128* values, long count)
    {
        using var builder = new Builder(directory, count);
        for (var i = 0L; i < count; i++) { builder.Add(values[i]); }
        return builder.Finish();
    }

    /// <summary>
    /// One run of <paramref name="older"/>'s and <paramref name="newer"/>'s entries (a key in both keeps its later time),
    /// read from their files in order and written to a new one. Both stay as they were.
    /// </summary>
    public static MessageIdRun Merge(string directory, MessageIdRun older, MessageIdRun newer)
    {
        using (var builder = new Builder(directory, older.Count + newer.Count))
        using (var a = older.Read())
        using (var b = newer.Read())
        {
            var hasA = a.MoveNext();
            var hasB = b.MoveNext();
            while (hasA || hasB)
            {
                if (!hasB || (hasA && a.Current >> 48 < b.Current >> 48))
                {
                    builder.Add(a.Current);
                    hasA = a.MoveNext();
                }
                else if (!hasA || b.Current >> 48 < a.Current >> 48)
                {
                    builder.Add(b.Current);
                    hasB = b.MoveNext();
                }
                else
                {
                    // The same key: the larger value is the later time.
                    builder.Add(UInt128.Max(a.Current, b.Current));
                    hasA = a.MoveNext();
                    hasB = b.MoveNext();
                }
            }

            return builder.Finish();
        }
    }

    /// <summary>
    /// A new run of this one's entries received at or after <paramref name="oldestSeconds"/>, null when none is. This
    /// one stays as it was.
    /// </summary>
    public MessageIdRun? Without(string directory, uint oldestSeconds)
    {
        // Counted first (the file read twice, once an hour at most), so the new run's buckets are sized for what stays.
        var survivors = 0L;
        using (var counting = Read())
        {
            while (counting.MoveNext()) { survivors += (uint)counting.Current >= oldestSeconds ? 1 : 0; }
        }

        if (survivors == 0) { return null; }
        using var builder = new Builder(directory, survivors);
        using var values = Read();
        while (values.MoveNext())
        {
            if ((uint)values.Current >= oldestSeconds) { builder.Add(values.Current); }
        }

        return builder.Finish();
    }

    /// <summary>The seconds the key was received at, when the run holds it.</summary>
    public bool TryFind(UInt128 key, out uint seconds)
    {
        ObjectDisposedException.ThrowIf(_buckets is null, this);
        var upper = (ulong)(key >> 64);
        var bucket = BucketOf(upper, _bucketBits);
        var tag = TagOf(upper, _bucketBits);
        for (long i = _buckets[bucket], end = _buckets[bucket + 1]; i < end; i++)
        {
            var held = TagAt(_tagsLow, _tagsHigh, i);
            if (held < tag) { continue; }
            if (held > tag) { break; }
            FileReads++;
            var value = ReadAt(i);
            if (value >> 48 == key >> 48)
            {
                seconds = (uint)value;
                return true;
            }
        }

        seconds = 0;
        return false;
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// <see cref="Dispose"/> with the file cut down in steps first (<see cref="FileTrim"/>): a run of millions of ids is
    /// tens to hundreds of MB, freed at once when its file closes. Sleeps between the steps; a failed cut only skips to
    /// the close.
    /// </summary>
    public void Release()
    {
        if (_buckets is not null)
        {
            try
            {
                FileTrim.CutDown(_file);
            }
            catch (IOException)
            {
                // The close frees the rest at once, as Dispose does.
            }
        }

        Dispose();
    }

    /// <summary>One bucket for every 16 to 32 entries (a bucket and a tag are the key's top 64 bits at most).</summary>
    private static int BucketBitsFor(long count) =>
        Math.Clamp(BitOperations.Log2((ulong)Math.Max(count, 1)) - 4, MinBucketBits, MaxBucketBits);

    /// <summary>The bucket of a key or value by its top 64 bits: the top <paramref name="bucketBits"/>.</summary>
    private static long BucketOf(ulong upper, int bucketBits) => (long)(upper >> (64 - bucketBits));

    /// <summary>The tag of a key or value by its top 64 bits: the 12 after the bucket's.</summary>
    private static int TagOf(ulong upper, int bucketBits) => (int)(upper >> (64 - bucketBits - TagBits)) & ((1 << TagBits) - 1);

    /// <summary>Entry <paramref name="index"/>'s tag: its low 8 bits in a byte of their own, its high 4 in half a byte shared with a neighbour.</summary>
    private static int TagAt(byte* low, byte* high, long index) =>
        low[index] | (((high[index >> 1] >> (int)((index & 1) << 2)) & 0xF) << 8);

    /// <summary>The bytes of <paramref name="count"/> tags' high half-bytes.</summary>
    private static long HighBytes(long count) => (count + 1) / 2;

    private static long BucketArrayBytes(int bucketBits) => ((1L << bucketBits) + 1) * sizeof(uint);

    private UInt128 ReadAt(long index)
    {
        UInt128 value;
        var read = RandomAccess.Read(_file, new Span<byte>(&value, ValueBytes), index * ValueBytes);
        return read == ValueBytes ? value : throw new IOException($"the dedup index's run file ended at entry {index:N0} of {Count:N0}");
    }

    /// <summary>The values in order, read from the file a block at a time.</summary>
    private IEnumerator<UInt128> Read()
    {
        var buffer = ArrayPool<UInt128>.Shared.Rent(StreamValues);
        try
        {
            for (var start = 0L; start < Count; start += StreamValues)
            {
                var n = (int)Math.Min(StreamValues, Count - start);
                var bytes = MemoryMarshal.AsBytes(buffer.AsSpan(0, n));
                if (RandomAccess.Read(_file, bytes, start * ValueBytes) != bytes.Length)
                {
                    throw new IOException($"the dedup index's run file ended before entry {start + n:N0} of {Count:N0}");
                }

                for (var i = 0; i < n; i++) { yield return buffer[i]; }
            }
        }
        finally
        {
            ArrayPool<UInt128>.Shared.Return(buffer);
        }
    }

    private void Free()
    {
        if (_buckets is null) { return; }
        NativePages.Free(_tagsLow, Count);
        NativePages.Free(_tagsHigh, HighBytes(Count));
        NativeMemory.Free(_buckets);
        _tagsLow = null;
        _tagsHigh = null;
        _buckets = null;
        _file.Dispose();
    }

    /// <summary>A new run's file and memory, written from values added in key order.</summary>
    private sealed class Builder : IDisposable
    {
        private readonly long _capacity;
        private readonly int _bucketBits;
        private readonly UInt128[] _buffer = ArrayPool<UInt128>.Shared.Rent(StreamValues);
        private SafeFileHandle? _file;
        private byte* _tagsLow;
        private byte* _tagsHigh;
        private uint* _counts;
        private int _buffered;
        private long _count;
        private uint _min = uint.MaxValue, _max;

        public Builder(string directory, long capacity)
        {
            _capacity = capacity;
            _bucketBits = BucketBitsFor(capacity);
            _file = CreateFile(directory);
            _tagsLow = (byte*)NativePages.Allocate(capacity);
            _tagsHigh = (byte*)NativePages.Allocate(HighBytes(capacity));
            _counts = (uint*)NativeMemory.AllocZeroed((nuint)((1L << _bucketBits) + 1), sizeof(uint));
        }

        public void Add(UInt128 value)
        {
            if (_count == _capacity) { throw new InvalidOperationException("more values than the run was made for"); }
            var upper = (ulong)(value >> 64);
            var tag = TagOf(upper, _bucketBits);
            _tagsLow[_count] = (byte)tag;
            // An even entry writes its half-byte's whole byte (the odd one after it adds its own), so nothing needs zeroing.
            ref var high = ref _tagsHigh[_count >> 1];
            high = (_count & 1) == 0 ? (byte)(tag >> 8) : (byte)(high | ((tag >> 8) << 4));
            _count++;
            _counts[BucketOf(upper, _bucketBits) + 1]++;
            var seconds = (uint)value;
            _min = Math.Min(_min, seconds);
            _max = Math.Max(_max, seconds);
            _buffer[_buffered++] = value;
            if (_buffered == StreamValues) { Flush(); }
        }

        /// <summary>The run, which takes the file and the memory; counts turned into starts, the tags cut to the count.</summary>
        public MessageIdRun Finish()
        {
            Flush();
            var n = 1L << _bucketBits;
            for (var i = 1L; i <= n; i++) { _counts[i] += _counts[i - 1]; }
            var low = (byte*)NativePages.Resize(_tagsLow, _capacity, _count);
            var high = (byte*)NativePages.Resize(_tagsHigh, HighBytes(_capacity), HighBytes(_count));
            var run = new MessageIdRun(_file!, _count, low, high, _counts, _bucketBits, _count == 0 ? 0 : _min, _max);
            _file = null;
            _tagsLow = null;
            _tagsHigh = null;
            _counts = null;
            return run;
        }

        public void Dispose()
        {
            ArrayPool<UInt128>.Shared.Return(_buffer);
            if (_file is null) { return; }
            _file.Dispose();
            NativePages.Free(_tagsLow, _capacity);
            NativePages.Free(_tagsHigh, HighBytes(_capacity));
            NativeMemory.Free(_counts);
        }

        private void Flush()
        {
            if (_buffered == 0) { return; }
            RandomAccess.Write(_file!, MemoryMarshal.AsBytes(_buffer.AsSpan(0, _buffered)), (_count - _buffered) * ValueBytes);
            _buffered = 0;
        }

        private static SafeFileHandle CreateFile(string directory)
        {
            Directory.CreateDirectory(directory);
            var path = Path.Combine(directory, $".tessera-dedup-{Guid.NewGuid():N}.run");
            if (OperatingSystem.IsWindows())
            {
                return File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose);
            }

            var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            File.Delete(path);
            return file;
        }
    }
}
