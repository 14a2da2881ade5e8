using System.IO.Hashing;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;

namespace Tessera.Storage.Events;

/// <summary>
/// The (source, messageId) pairs seen within the dedup window, as hashes with their receive time. A hash keeps the
/// entry small instead of two strings. The pairs received last are in an open-addressing table in native memory (86 of
/// XxHash128's bits, the time to the millisecond, rounded up); once it holds <c>maxRecentSlots</c> × 0.7 of them they
/// move to a sorted run (<see cref="MessageIdRun"/>: 80 of the bits and the time to the second, rounded up, in a file
/// in <c>directory</c>, with 1.6-1.75 bytes an entry in memory that tell a lookup whether to read the file), and runs of
/// like size merge (a run is never followed by one as large), so a lookup reads the table and a handful of runs. A
/// merge, and a sweep's rewrite of a run, runs on a thread-pool thread, one at a time: the two runs (or the one) stay
/// in use until the new one is swapped in by the next call that finds it done, so a large merge (a few hundred ms at
/// millions of pairs, seconds at hundreds of millions) never stalls the owner. A false duplicate needs a new message to
/// agree with one held on 80 bits (86 in the table): a lookup of a run of n ids has a chance of about n / 2^80 (10^-17
/// at ten million), which is not a practical risk. Not thread-safe: its owner serialises access; <see cref="Dispose"/>
/// waits for the work in flight and frees its memory and its files.
/// </summary>
/// <remarks>
/// Native, not a <c>Dictionary&lt;UInt128, long&gt;</c>: the dictionary took 36 bytes a slot in two arrays on the large
/// object heap, and every time it grew the arrays it left behind stayed there until the next full collection (a
/// million entries were about 60 MB of the GC's heap, a third of it dead), and the GC sized its budgets by them. The
/// table alone took 16 bytes a slot at 35-70 % of its slots, 23-46 bytes an entry, and doubled while the old table was
/// still held (64 and 128 MB at once at 3 million entries). Runs held in memory took 12-13 bytes an entry, which at 50,000
/// messages a second is 50 MB after a minute and grows with the window; in files they take 1.6-1.75 (2.3-2.5 until
/// 2026-12-07). docs/benchmarks.md, "The dedup index in native memory, and what the GC's share is made of", "Older
/// message ids in sorted runs", "The dedup index's runs in files" and "A fast machine, and what grows with the events
/// stored".
/// </remarks>
public sealed unsafe class MessageIdIndex : IDisposable
{
    private const int MinimumSlots = 1 << 10;
    internal const int DefaultMaxRecentSlots = 1 << 18;
    private const long MaxRunEntries = 1L << 27;
    private const int TimeBits = 42;
    private const ulong TimeMask = (1UL << TimeBits) - 1;
    private static readonly long EpochTicks = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks;

    [StructLayout(LayoutKind.Sequential)]
    private struct Slot
    {
        /// <summary>The key's high 64 bits.</summary>
        public ulong Upper;

        /// <summary>The key's bits 42-63, then the receive time in milliseconds since 2000 (at least 1: 0 is free).</summary>
        public ulong LowerAndTime;

        public readonly bool IsFree => (LowerAndTime & TimeMask) == 0;

        public readonly ulong Millis => LowerAndTime & TimeMask;

        public readonly long Ticks => EpochTicks + (long)Millis * TimeSpan.TicksPerMillisecond;

        public readonly bool Holds(UInt128 key) => Upper == (ulong)(key >> 64) && (LowerAndTime & ~TimeMask) == Lower(key);

        public static ulong Lower(UInt128 key) => (ulong)key & ~TimeMask;

        public static ulong ToMillis(long utcTicks) =>
            (ulong)Math.Clamp((utcTicks - EpochTicks + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond, 1, (long)TimeMask);
    }

    private readonly int _maxRecentSlots;
    private readonly string _directory;
    private readonly List<MessageIdRun> _runs = [];
    private RunWork? _work;
    private uint? _sweepBefore;
    private Slot* _slots;
    private long _capacity;
    private long _recent;
    private long _runEntries;
    private long _runBytes;
    private long _fileBytes;
    private long _count;
    private long _bytes;
    private long _lastSweepTicks = DateTimeOffset.UtcNow.UtcTicks;

    /// <summary>An index whose older pairs go to files in <paramref name="directory"/> (made when the first one is).</summary>
    public MessageIdIndex(TimeSpan window, string directory) : this(window, directory, DefaultMaxRecentSlots) { }

    /// <summary>An index whose table of recent pairs grows to <paramref name="maxRecentSlots"/> (a power of two).</summary>
    internal MessageIdIndex(TimeSpan window, string directory, int maxRecentSlots)
    {
        if (maxRecentSlots < MinimumSlots || !BitOperations.IsPow2(maxRecentSlots)) { throw new ArgumentOutOfRangeException(nameof(maxRecentSlots)); }
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Window = window;
        _directory = directory;
        _maxRecentSlots = maxRecentSlots;
        Allocate(MinimumSlots);
    }

    ~MessageIdIndex() => Free(disposing: false);

    public TimeSpan Window { get; }

    /// <summary>
    /// The pairs held (a gauge may read it from another thread: a count, not a snapshot); a key in two runs not yet merged
    /// counts twice.
    /// </summary>
    public int Count => (int)Math.Min(Volatile.Read(ref _count), int.MaxValue);

    /// <summary>The table's and the runs' native memory, in bytes.</summary>
    public long Bytes => Volatile.Read(ref _bytes);

    /// <summary>The runs' files, in bytes (unlinked: not listed in the directory).</summary>
    public long FileBytes => Volatile.Read(ref _fileBytes);

    /// <summary>The sorted runs held (for tests and benchmarks).</summary>
    internal int Runs => _runs.Count;

    /// <summary>Whether a merge or a sweep's rewrite of runs is in flight or done and not yet swapped in (for tests).</summary>
    internal bool Working => _work is not null;

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
        if (_work is { Done: true }) { SwapInWork(); }
        var slot = Find(_slots, _capacity, key);
        if (!slot->IsFree && Within(slot->Ticks, receivedAt)) { return true; }
        for (var i = _runs.Count - 1; i >= 0; i--)
        {
            if (_runs[i].TryFind(key, out var seconds) && Within(EpochTicks + seconds * TimeSpan.TicksPerSecond, receivedAt)) { return true; }
        }

        return false;
    }

    public void Add(UInt128 key, DateTimeOffset receivedAt)
    {
        ObjectDisposedException.ThrowIf(_slots is null, this);
        if (_work is { Done: true }) { SwapInWork(); }
        if ((_recent + 1) * 10 > _capacity * 7)
        {
            if (_capacity < _maxRecentSlots) { Resize(_capacity * 2, oldest: long.MinValue); }
            else { MoveRecentToRun(); }
        }

        var millis = Slot.ToMillis(receivedAt.UtcTicks);
        var slot = Find(_slots, _capacity, key);
        if (slot->IsFree)
        {
            *slot = new Slot { Upper = (ulong)(key >> 64), LowerAndTime = Slot.Lower(key) | millis };
            _recent++;
            Publish();
        }
        else if (millis > slot->Millis)
        {
            slot->LowerAndTime = Slot.Lower(key) | millis;
        }
    }

    /// <summary>Forgets every pair (before reloading them from the store after a failed commit).</summary>
    public void Clear()
    {
        Free(disposing: true);
        Allocate(MinimumSlots);
    }

    /// <summary>Waits until no merge or sweep of runs is in flight or due, swapping each in (tests and benchmarks).</summary>
    internal void WaitForRuns()
    {
        while (_work is { } work)
        {
            work.Wait();
            SwapInWork();
        }
    }

    /// <summary>
    /// Drops entries older than the window, at most once an hour, so memory follows the window, not history: the recent
    /// survivors move to a table sized for them, a run wholly older goes at once (unless a merge is reading it), and a run
    /// partly older is rewritten without them in the background, one after another.
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
        Resize(Math.Min(capacity, _maxRecentSlots), oldest);

        // A run's times are rounded up to the second: one whose second reaches the window's start stays.
        var oldestSeconds = (uint)Math.Clamp((oldest - EpochTicks) / TimeSpan.TicksPerSecond, 0, uint.MaxValue);
        _runs.RemoveAll(run =>
        {
            if (run.MaxSeconds >= oldestSeconds || _work?.Reads(run) == true) { return false; }
            run.Dispose();
            return true;
        });
        _sweepBefore = oldestSeconds;
        RunsChanged();
        StartWork();
    }

    public void Dispose()
    {
        Free(disposing: true);
        GC.SuppressFinalize(this);
    }

    private bool Within(long storedTicks, DateTimeOffset receivedAt) => receivedAt.UtcTicks - storedTicks < Window.Ticks;

    /// <summary>The slot holding <paramref name="key"/>, or the free slot where it would go.</summary>
    private static Slot* Find(Slot* slots, long capacity, UInt128 key)
    {
        var mask = (ulong)capacity - 1;
        for (var i = (ulong)(key >> 64) & mask; ; i = (i + 1) & mask)
        {
            var slot = slots + i;
            if (slot->IsFree || slot->Holds(key)) { return slot; }
        }
    }

    /// <summary>Places an entry moved from another table.</summary>
    private static void Insert(Slot* slots, long capacity, Slot entry)
    {
        var mask = (ulong)capacity - 1;
        var i = entry.Upper & mask;
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

        NativePages.Free(slots, previous * sizeof(Slot));
        _slots = next;
        _capacity = capacity;
        _recent = count;
        Publish();
    }

    /// <summary>
    /// Moves the recent pairs, sorted, into a new run (their times to the second, rounded up) and empties the table in
    /// place; then merges runs.
    /// </summary>
    private void MoveRecentToRun()
    {
        var bytes = _recent * sizeof(UInt128);
        var values = (UInt128*)NativePages.Allocate(bytes);
        try
        {
            var n = 0L;
            for (var i = 0L; i < _capacity; i++)
            {
                var slot = _slots[i];
                if (slot.IsFree) { continue; }
                var seconds = (uint)Math.Min((slot.Millis + 999) / 1000, uint.MaxValue);
                values[n++] = MessageIdRun.Value(slot.Upper, (ushort)(slot.LowerAndTime >> 48), seconds);
            }

            new Span<UInt128>(values, (int)n).Sort();
            _runs.Add(MessageIdRun.FromSorted(_directory, values, n));
        }
        finally
        {
            NativePages.Free(values, bytes);
        }

        NativeMemory.Clear(_slots, (nuint)(_capacity * sizeof(Slot)));
        _recent = 0;
        RunsChanged();
        StartWork();
    }

    /// <summary>
    /// Starts the next piece of work on the runs when none is in flight: a run a sweep found partly older than the window,
    /// rewritten without those; else the newest two neighbouring runs the older of which is no larger (and the two fit
    /// one run), merged. Sizes then at least double from newest to oldest once the merges catch up, so there are about
    /// log2(entries / table) runs, and each entry is merged as many times at most.
    /// </summary>
    private void StartWork()
    {
        if (_work is not null) { return; }
        if (_sweepBefore is { } before)
        {
            var old = _runs.Find(run => run.MinSeconds < before);
            if (old is not null)
            {
                _work = new RunWork(old, null, Task.Run(() => old.Without(_directory, before)));
                return;
            }

            _sweepBefore = null;
        }

        for (var i = _runs.Count - 1; i >= 1; i--)
        {
            var (older, newer) = (_runs[i - 1], _runs[i]);
            if (older.Count > newer.Count || older.Count + newer.Count > MaxRunEntries) { continue; }
            _work = new RunWork(older, newer, Task.Run(() => (MessageIdRun?)MessageIdRun.Merge(_directory, older, newer)));
            return;
        }
    }

    /// <summary>
    /// Puts the finished work's run in place of the run(s) it read and frees those, then starts the next. When the work
    /// failed (a full disk), the runs it read stay and its exception is thrown here (the store's append fails before it
    /// changed anything, and the journal's indexer retries it); the next run made or sweep starts work again.
    /// </summary>
    private void SwapInWork()
    {
        var work = _work!;
        _work = null;
        var made = work.Result();
        var at = _runs.IndexOf(work.First);
        if (made is null) { _runs.RemoveAt(at); }
        else { _runs[at] = made; }
        if (work.Second is not null) { _runs.Remove(work.Second); }
        Release(work.First, work.Second);
        RunsChanged();
        StartWork();
    }

    /// <summary>
    /// Frees the runs a merge or a sweep replaced. Runs with more than one of <see cref="FileTrim"/>'s steps of file
    /// between them go to a thread of their own, which cuts their files down in steps before they close
    /// (<see cref="MessageIdRun.Release"/>, ~0.3 s for 64 MB): this is the indexer's thread, and freed at once a run of 8
    /// million ids (128 MB) held it and, on a disk that discards freed blocks at once, the journal's fsyncs behind it
    /// (docs/benchmarks.md, "Segments deleted in steps"). Smaller ones (most merges: the first runs are ~3 MB) are freed
    /// here, as before.
    /// </summary>
    private static void Release(MessageIdRun first, MessageIdRun? second)
    {
        if (first.FileBytes + (second?.FileBytes ?? 0) <= FileTrim.StepBytes)
        {
            first.Dispose();
            second?.Dispose();
            return;
        }

        var release = new Thread(() =>
        {
            first.Release();
            second?.Release();
        })
        { IsBackground = true, Name = "Tessera dedup release" };
        release.Start();
    }

    /// <summary>Sums the runs' entries and bytes again (they change only when runs are made, merged, swept or freed), publishes their files' bytes, then <see cref="Publish"/>.</summary>
    private void RunsChanged()
    {
        _runEntries = _runs.Sum(run => run.Count);
        _runBytes = _runs.Sum(run => run.Bytes);
        Volatile.Write(ref _fileBytes, _runs.Sum(run => run.FileBytes));
        Publish();
    }

    /// <summary>Makes <see cref="Count"/> and <see cref="Bytes"/> current for readers on other threads (on every new pair: no loop here).</summary>
    private void Publish()
    {
        Volatile.Write(ref _count, _recent + _runEntries);
        Volatile.Write(ref _bytes, _capacity * sizeof(Slot) + _runBytes);
    }

    private static Slot* NewTable(long capacity)
    {
        var slots = (Slot*)NativePages.Allocate(capacity * sizeof(Slot));
        if (!OperatingSystem.IsLinux()) { NativeMemory.Clear(slots, (nuint)(capacity * sizeof(Slot))); }
        return slots;
    }

    private void Allocate(long capacity)
    {
        _slots = NewTable(capacity);
        _capacity = capacity;
        _recent = 0;
        Publish();
    }

    private void Free(bool disposing)
    {
        if (_slots is null) { return; }
        if (disposing && _work is { } work)
        {
            // The work reads the runs: it finishes first, and what it made goes too.
            _work = null;
            work.Abandon();
        }

        NativePages.Free(_slots, _capacity * sizeof(Slot));
        _slots = null;
        if (disposing)
        {
            foreach (var run in _runs) { run.Dispose(); }
            _runs.Clear();
        }

        _sweepBefore = null;
        _capacity = 0;
        _recent = 0;
        RunsChanged();
    }

    /// <summary>A merge of two runs (<see cref="Second"/> the newer) or a sweep's rewrite of one, in flight.</summary>
    private sealed class RunWork(MessageIdRun first, MessageIdRun? second, Task<MessageIdRun?> task)
    {
        public MessageIdRun First { get; } = first;

        public MessageIdRun? Second { get; } = second;

        public bool Done => task.IsCompleted;

        public bool Reads(MessageIdRun run) => ReferenceEquals(run, First) || ReferenceEquals(run, Second);

        public void Wait() => ((IAsyncResult)task).AsyncWaitHandle.WaitOne();

        /// <summary>The run it made (null: a sweep left none); throws what it failed with.</summary>
        public MessageIdRun? Result() => task.GetAwaiter().GetResult();

        /// <summary>Waits for it and frees what it made, if anything; a failure is of no interest any more.</summary>
        public void Abandon()
        {
            Wait();
            if (task.IsCompletedSuccessfully) { task.Result?.Dispose(); }
        }
    }
}
