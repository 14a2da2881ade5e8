using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace Tessera.Storage.Events;

/// <summary>
/// The (source, messageId) pairs seen within the dedup window, as hashes with their receive time, in an
/// open-addressing table of native memory. A hash keeps the entry small instead of two strings: 86 of XxHash128's bits
/// are kept, and a false duplicate needs two of the window's messages to agree on all 86 (with a billion entries held,
/// about one chance in 10^17 a message), which is not a practical risk. Receive times are kept to the millisecond,
/// rounded up. Not thread-safe: its owner serialises access; <see cref="Dispose"/> frees the table.
/// </summary>
/// <remarks>
/// Native, not a <c>Dictionary&lt;UInt128, long&gt;</c>: the dictionary took 36 bytes a slot in two arrays on the large
/// object heap, and every time it grew the arrays it left behind stayed there until the next full collection (a
/// million entries were about 60 MB of the GC's heap, a third of it dead), and the GC sized its budgets by them. Here
/// an entry is 16 bytes (64 bits of the key; then 22 more of it above 42 bits of milliseconds since 2000, which last
/// until 2139; all zero is a free slot), the table holds 35-70 % of its slots, and the old table is freed the moment
/// it is replaced. Linear probing: the key is already a uniform hash, so its low bits pick the slot.
/// docs/benchmarks.md, "The dedup index in native memory, and what the GC's share is made of".
/// </remarks>
public sealed unsafe class MessageIdIndex : IDisposable
{
    private const int MinimumSlots = 1 << 10;
    private const int TimeBits = 42;
    private const ulong TimeMask = (1UL << TimeBits) - 1;
    private static readonly long EpochTicks = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks;

    [StructLayout(LayoutKind.Sequential)]
    private struct Slot
    {
        /// <summary>The key's low 64 bits.</summary>
        public ulong Lower;

        /// <summary>The key's top 22 bits, then the receive time in milliseconds since 2000 (at least 1: 0 is free).</summary>
        public ulong UpperAndTime;

        public readonly bool IsFree => (UpperAndTime & TimeMask) == 0;

        public readonly long Ticks => EpochTicks + (long)(UpperAndTime & TimeMask) * TimeSpan.TicksPerMillisecond;

        public readonly bool Holds(UInt128 key) => Lower == (ulong)key && (UpperAndTime & ~TimeMask) == Upper(key);

        public static ulong Upper(UInt128 key) => (ulong)(key >> 64) & ~TimeMask;

        public static ulong Millis(long utcTicks) =>
            (ulong)Math.Clamp((utcTicks - EpochTicks + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond, 1, (long)TimeMask);
    }

    private Slot* _slots;
    private long _capacity;
    private long _count;
    private long _lastSweepTicks = DateTimeOffset.UtcNow.UtcTicks;

    public MessageIdIndex(TimeSpan window)
    {
        Window = window;
        Allocate(MinimumSlots);
    }

    ~MessageIdIndex() => Free();

    public TimeSpan Window { get; }

    /// <summary>The pairs held (a gauge may read it from another thread: a count, not a snapshot).</summary>
    public int Count => (int)Math.Min(Volatile.Read(ref _count), int.MaxValue);

    /// <summary>The table's native memory, in bytes.</summary>
    public long Bytes => Volatile.Read(ref _capacity) * sizeof(Slot);

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
    public bool Contains(UInt128 key, DateTimeOffset receivedAt)
    {
        ObjectDisposedException.ThrowIf(_slots is null, this);
        var slot = Find(_slots, _capacity, key);
        return !slot->IsFree && receivedAt.UtcTicks - slot->Ticks < Window.Ticks;
    }

    public void Add(UInt128 key, DateTimeOffset receivedAt)
    {
        ObjectDisposedException.ThrowIf(_slots is null, this);
        if ((_count + 1) * 10 > _capacity * 7) { Resize(_capacity * 2, oldest: long.MinValue); }
        var millis = Slot.Millis(receivedAt.UtcTicks);
        var slot = Find(_slots, _capacity, key);
        if (slot->IsFree)
        {
            *slot = new Slot { Lower = (ulong)key, UpperAndTime = Slot.Upper(key) | millis };
            Volatile.Write(ref _count, _count + 1);
        }
        else if (millis > (slot->UpperAndTime & TimeMask))
        {
            slot->UpperAndTime = Slot.Upper(key) | millis;
        }
    }

    /// <summary>Forgets every pair (before reloading them from the store after a failed commit).</summary>
    public void Clear()
    {
        Free();
        Allocate(MinimumSlots);
    }

    /// <summary>
    /// Drops entries older than the window, at most once an hour, so memory follows the window, not history: the
    /// survivors move to a table sized for them and the old one is freed.
    /// </summary>
    public void SweepIfDue(DateTimeOffset now)
    {
        if (now.UtcTicks - _lastSweepTicks < TimeSpan.TicksPerHour) { return; }
        ObjectDisposedException.ThrowIf(_slots is null, this);
        _lastSweepTicks = now.UtcTicks;
        var oldest = now.UtcTicks - Window.Ticks;
        var survivors = 0L;
        for (var i = 0L; i < _capacity; i++)
        {
            if (!_slots[i].IsFree && _slots[i].Ticks >= oldest) { survivors++; }
        }

        var capacity = (long)MinimumSlots;
        while (survivors * 2 > capacity) { capacity *= 2; }
        Resize(capacity, oldest);
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    /// <summary>The slot holding <paramref name="key"/>, or the free slot where it would go.</summary>
    private static Slot* Find(Slot* slots, long capacity, UInt128 key)
    {
        var mask = (ulong)capacity - 1;
        for (var i = (ulong)key & mask; ; i = (i + 1) & mask)
        {
            var slot = slots + i;
            if (slot->IsFree || slot->Holds(key)) { return slot; }
        }
    }

    /// <summary>Places an entry moved from another table (its key's upper bits are partial, so it is placed by its lower ones).</summary>
    private static void Insert(Slot* slots, long capacity, Slot entry)
    {
        var mask = (ulong)capacity - 1;
        var i = entry.Lower & mask;
        while (!slots[i].IsFree) { i = (i + 1) & mask; }
        slots[i] = entry;
    }

    /// <summary>Moves the entries received at or after <paramref name="oldest"/> into a table of <paramref name="capacity"/> slots.</summary>
    private void Resize(long capacity, long oldest)
    {
        var slots = _slots;
        var previous = _capacity;
        var count = 0L;
        var next = NewTable(capacity);
        for (var i = 0L; i < previous; i++)
        {
            if (slots[i].IsFree || slots[i].Ticks < oldest) { continue; }
            Insert(next, capacity, slots[i]);
            count++;
        }

        NativeMemory.Free(slots);
        _slots = next;
        Volatile.Write(ref _capacity, capacity);
        Volatile.Write(ref _count, count);
    }

    private static Slot* NewTable(long capacity) => (Slot*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(Slot));

    private void Allocate(long capacity)
    {
        _slots = NewTable(capacity);
        Volatile.Write(ref _capacity, capacity);
        Volatile.Write(ref _count, 0);
    }

    private void Free()
    {
        if (_slots is null) { return; }
        NativeMemory.Free(_slots);
        _slots = null;
        Volatile.Write(ref _capacity, 0);
        Volatile.Write(ref _count, 0);
    }
}
