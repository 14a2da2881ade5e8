using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Tessera.Core.Collection;

namespace Tessera.Storage.Journal;

/// <summary>
/// Tessera's own append-only journal of collected events, the point at which a request is durable: a group commit
/// is one record, written and synced to disk (one fsync) before its requests are answered. The store is filled from
/// it behind the answer (see the server's <c>JournalIndexer</c>).
/// </summary>
/// <remarks>
/// A directory with <c>journal.id</c> (names this journal in the store's recorded positions), <c>journal.lock</c>
/// (held while open: one process per journal) and segment files named after the journal position of their first
/// byte (<c>00000000000000000000.tjl</c>). Positions count bytes over every segment ever written, so a position
/// names one place for the journal's whole life. A record is a 24-byte header (marker <c>TJL1</c>, payload length,
/// event count, XxHash3 of the payload, XxHash32 of the header) and the payload (<see cref="JournalCodec"/>).
/// Records never span segments; a new segment starts when the next record would take the active one past its size.
/// One writer thread appends; readers may read concurrently up to <see cref="End"/>.
/// </remarks>
public sealed class EventJournal : IDisposable
{
    public const long DefaultSegmentBytes = 64L << 20;
    public const string SegmentExtension = ".tjl";
    internal const int HeaderBytes = 24;
    internal const uint Magic = 0x314C4A54; // "TJL1" as little-endian bytes
    internal const int MaxPayloadBytes = 64 << 20;
    private const string IdFile = "journal.id";
    private const string LockFile = "journal.lock";

    private readonly Lock _segmentsLock = new();
    private readonly List<Segment> _segments;
    private readonly FileStream _lockFile;
    private readonly long _segmentBytes;
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    private SafeFileHandle _active;
    private long _activeLength;
    private long _end;
    private string? _faulted;
    private volatile bool _closed;

    internal sealed record Segment(long Base, string Path);

    private EventJournal(string directory, string id, FileStream lockFile, List<Segment> segments, SafeFileHandle active, long activeLength, long segmentBytes, JournalRepair? repair)
    {
        Directory = directory;
        Id = id;
        _lockFile = lockFile;
        _segments = segments;
        _active = active;
        _activeLength = activeLength;
        _segmentBytes = segmentBytes;
        _end = segments[^1].Base + activeLength;
        Repair = repair;
    }

    public string Directory { get; }

    /// <summary>This journal's identity, made at its creation; the store records positions under it.</summary>
    public string Id { get; }

    /// <summary>The position after the last durable record: everything before it has been synced to disk.</summary>
    public long End => Volatile.Read(ref _end);

    /// <summary>The first position still on disk (the first byte of the oldest segment kept).</summary>
    public long Start
    {
        get
        {
            lock (_segmentsLock) { return _segments[0].Base; }
        }
    }

    public int SegmentCount
    {
        get
        {
            lock (_segmentsLock) { return _segments.Count; }
        }
    }

    /// <summary>What opening repaired: a torn last record (a crash in the middle of a write) cut off; null when nothing was.</summary>
    public JournalRepair? Repair { get; }

    /// <summary>
    /// Opens (creating when absent) the journal in <paramref name="directory"/>. A torn or corrupt record at the end
    /// of the last segment, with nothing valid after it, is what a crash during a write leaves: it was never
    /// acknowledged, and it is cut off (<see cref="Repair"/>). A corrupt record followed by valid ones, or a gap
    /// between segments, is damage: <see cref="JournalException"/> names the file and offset.
    /// </summary>
    public static EventJournal Open(string directory, long segmentBytes = DefaultSegmentBytes)
    {
        var full = Path.GetFullPath(directory);
        FileStream lockFile;
        try
        {
            System.IO.Directory.CreateDirectory(full);
            lockFile = new FileStream(Path.Combine(full, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new JournalException($"{full}: the journal directory is in use by another Tessera process ({LockFile} is locked); give each process its own journal directory (--journal-dir).", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new JournalException($"{full}: cannot open the journal directory: {e.Message}", e);
        }

        SafeFileHandle? active = null;
        try
        {
            var id = ReadOrCreateId(full);
            var segments = ListSegments(full);
            if (segments.Count == 0)
            {
                segments.Add(new Segment(0, SegmentPath(full, 0)));
                active = File.OpenHandle(segments[0].Path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
                DirectorySync.Sync(full);
                return new EventJournal(full, id, lockFile, segments, active, 0, segmentBytes, null);
            }

            for (var k = 0; k < segments.Count - 1; k++)
            {
                var length = new FileInfo(segments[k].Path).Length;
                if (segments[k].Base + length != segments[k + 1].Base)
                {
                    throw new JournalException(
                        $"{segments[k].Path}: the segment holds {length} bytes, so the next should start at journal position {segments[k].Base + length}, " +
                        $"but the next is {Path.GetFileName(segments[k + 1].Path)}: a segment is missing or was cut short. Restore it from a backup, " +
                        "or move the journal directory aside to start a new journal (its events not yet indexed are then not indexed).");
                }
            }

            var last = segments[^1];
            active = File.OpenHandle(last.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
            var (validLength, repair) = RecoverTail(active, last.Path);
            return new EventJournal(full, id, lockFile, segments, active, validLength, segmentBytes, repair);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            active?.Dispose();
            lockFile.Dispose();
            throw new JournalException($"{full}: cannot open the journal: {e.Message}", e);
        }
        catch
        {
            active?.Dispose();
            lockFile.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Appends one record holding the events of <paramref name="groups"/> (each a request's, encoded), syncs it to disk,
    /// and returns the new <see cref="End"/>. One caller at a time (the group commit's thread). Once the journal is
    /// disposed (its indexer stopped), throws <see cref="JournalException"/>, also when the close races the write.
    /// </summary>
    public long Append(IReadOnlyList<EncodedEvents> groups)
    {
        if (_closed) { throw Closed(); }
        try
        {
            return AppendOpen(groups);
        }
        catch (ObjectDisposedException) when (_closed)
        {
            // Closed by another thread meanwhile (its indexer stopped), mid-write or mid-roll: nothing was acknowledged.
            throw Closed();
        }
    }

    /// <summary>Appends one record holding <paramref name="events"/> (encoded here), as <see cref="Append(IReadOnlyList{EncodedEvents})"/>.</summary>
    public long Append(IReadOnlyList<CollectedEvent> events)
    {
        using var encoded = EncodedEvents.Of(events);
        return Append([encoded]);
    }

    private long AppendOpen(IReadOnlyList<EncodedEvents> groups)
    {
        if (_faulted is not null) { throw new JournalException(_faulted); }
        _buffer.ResetWrittenCount();
        _buffer.GetSpan(HeaderBytes);
        _buffer.Advance(HeaderBytes);
        var count = JournalCodec.Write(groups, _buffer);
        var record = MemoryMarshal.AsMemory(_buffer.WrittenMemory).Span;
        var payload = record[HeaderBytes..];
        if (payload.Length > MaxPayloadBytes)
        {
            throw new ArgumentException($"a group of {count} events takes {payload.Length} bytes; one record holds at most {MaxPayloadBytes}", nameof(groups));
        }

        WriteHeader(record[..HeaderBytes], payload, count);
        if (_activeLength > 0 && _activeLength + record.Length > _segmentBytes) { Roll(); }

        var offset = _activeLength;
        try
        {
            RandomAccess.Write(_active, record, offset);
            RandomAccess.FlushToDisk(_active);
        }
        catch (IOException e)
        {
            // Nothing of this record may stay: a later record written after a partial one would make it a corrupt
            // record in the middle, which stops the next start. If even the cut fails, take no more writes.
            try
            {
                RandomAccess.SetLength(_active, offset);
                RandomAccess.FlushToDisk(_active);
            }
            catch (IOException)
            {
                _faulted = $"{Directory}: the journal could not be written ({e.Message}) nor cut back after the failed write; restart Tessera to recover it.";
            }

            throw new JournalException($"{Directory}: could not write to the journal: {e.Message}", e);
        }

        _activeLength += record.Length;
        var end = _end + record.Length;
        Volatile.Write(ref _end, end);
        return end;
    }

    /// <summary>A reader from <paramref name="position"/> (a record boundary at or after <see cref="Start"/>).</summary>
    public JournalReader OpenReader(long position) => new(this, position);

    /// <summary>
    /// Deletes the segments that end at or before <paramref name="position"/>; never the active one. Returns how many.
    /// Each segment's file is first renamed out of the journal (<c>.deleting</c>, the directory synced), so a crash in
    /// the middle of its deletion leaves no short segment behind, and then deleted; files a deletion left so (a failure
    /// or a stop in the middle of one) are deleted by the next call. <paramref name="paced"/> cuts each file down a few MB
    /// at a time with a pause between the cuts (<see cref="FileTrim"/>) before it is unlinked: freeing a 64 MB
    /// segment at once stalled the disk's other writes, the group commit's fsyncs among them, for 35-90 ms on the
    /// benchmark machine (ext4 mounted <c>discard</c>: it trims every block it frees), in steps for a few ms each
    /// (docs/benchmarks.md, "Segments deleted in steps"). The list of segments is let go before any file is touched (the
    /// group commit's roll to a new segment and every reader take the same lock), but the deletion itself blocks its
    /// caller, paced ~0.4 s a segment: call it from a thread that nothing waits for.
    /// </summary>
    public int DeleteBefore(long position, bool paced = false)
    {
        List<Segment>? indexed = null;
        lock (_segmentsLock)
        {
            while (FirstSegmentEndsBy(position))
            {
                (indexed ??= []).Add(_segments[0]);
                _segments.RemoveAt(0);
            }
        }

        var retired = 0;
        for (; retired < (indexed?.Count ?? 0); retired++)
        {
            try
            {
                File.Move(indexed![retired].Path, Path.ChangeExtension(indexed[retired].Path, RetiredExtension));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Kept in the list, oldest first, so the next call deletes them again, as before the list let go of them.
                lock (_segmentsLock) { _segments.InsertRange(0, indexed![retired..]); }
                throw;
            }
        }

        // The renames (this call's, and any an earlier call made before it failed) on disk before any cut: a crash must
        // not find a segment cut short under its own name.
        var leftovers = System.IO.Directory.EnumerateFiles(Directory, "*" + RetiredExtension).Order(StringComparer.Ordinal).ToList();
        if (leftovers.Count > 0) { DirectorySync.Sync(Directory); }
        foreach (var path in leftovers)
        {
            if (paced) { CutDown(path); }
            DeleteSegmentFile(path);
        }

        return retired;
    }

    /// <summary>The extension a segment's file takes while it is deleted: out of the journal, never read again.</summary>
    internal const string RetiredExtension = ".deleting";

    /// <summary>Frees a retired file's blocks a few at a time (<see cref="FileTrim"/>) before it is unlinked.</summary>
    private static void CutDown(string path)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
        FileTrim.CutDown(handle);
    }

    /// <summary>Whether <see cref="DeleteBefore"/> would delete a segment for <paramref name="position"/> (without deleting it).</summary>
    public bool HasSegmentsBefore(long position)
    {
        lock (_segmentsLock) { return FirstSegmentEndsBy(position); }
    }

    /// <summary>Whether the oldest segment kept ends at or before <paramref name="position"/> and is not the active one (under the lock).</summary>
    private bool FirstSegmentEndsBy(long position) => _segments.Count > 1 && _segments[1].Base <= position;

    /// <summary>Deletes one retired segment's file (<see cref="File.Delete"/>; tests slow it down).</summary>
    internal Action<string> DeleteSegmentFile { get; set; } = File.Delete;

    private JournalException Closed() => new($"{Directory}: the journal is closed and takes no more records.");

    public void Dispose()
    {
        _closed = true;
        _active.Dispose();
        _lockFile.Dispose();
    }

    internal Segment SegmentAt(long position)
    {
        lock (_segmentsLock)
        {
            if (position < _segments[0].Base)
            {
                throw new JournalException($"{Directory}: journal position {position} is before the oldest segment kept ({_segments[0].Base}); it was deleted as indexed.");
            }

            for (var k = _segments.Count - 1; ; k--)
            {
                if (_segments[k].Base <= position) { return _segments[k]; }
            }
        }
    }

    /// <summary>Checks a record header; null when it is sound, else what is wrong with it.</summary>
    internal static string? ParseHeader(ReadOnlySpan<byte> header, out int payloadLength, out ulong payloadHash)
    {
        payloadLength = 0;
        payloadHash = 0;
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic)
        {
            return header.IndexOfAnyExcept((byte)0) < 0 ? "zeros where a record should start" : "no record marker where a record should start";
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(header[20..]) != XxHash32.HashToUInt32(header[..20])) { return "the header's checksum does not match"; }
        var length = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        if (length > MaxPayloadBytes) { return $"a payload length of {length} bytes, over the limit of {MaxPayloadBytes}"; }
        payloadLength = (int)length;
        payloadHash = BinaryPrimitives.ReadUInt64LittleEndian(header[12..]);
        return null;
    }

    private static void WriteHeader(Span<byte> header, ReadOnlySpan<byte> payload, int eventCount)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(header, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], (uint)eventCount);
        BinaryPrimitives.WriteUInt64LittleEndian(header[12..], XxHash3.HashToUInt64(payload));
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], XxHash32.HashToUInt32(header[..20]));
    }

    private void Roll()
    {
        var segment = new Segment(_end, SegmentPath(Directory, _end));
        SafeFileHandle next;
        try
        {
            next = File.OpenHandle(segment.Path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
        }
        catch (IOException e)
        {
            throw new JournalException($"{segment.Path}: could not start a new journal segment: {e.Message}", e);
        }

        // The new file's name is on disk before any record in it is acknowledged: its records' fsyncs cover its data, and
        // POSIX leaves its entry in the directory to a sync of the directory (ext4 commits it with them; other
        // filesystems need not). Once a segment, not once a record.
        try
        {
            DirectorySync.Sync(Directory);
        }
        catch (IOException e)
        {
            next.Dispose();
            try { File.Delete(segment.Path); } catch (Exception left) when (left is IOException or UnauthorizedAccessException) { }
            throw new JournalException($"{segment.Path}: could not start a new journal segment: {e.Message}", e);
        }

        lock (_segmentsLock)
        {
            _segments.Add(segment);
        }

        var previous = _active;
        _active = next;
        _activeLength = 0;
        previous.Dispose();
    }

    /// <summary>Walks the last segment's records; cuts off a torn tail, refuses a corrupt record with valid ones after it.</summary>
    private static (long ValidLength, JournalRepair? Repair) RecoverTail(SafeFileHandle handle, string path)
    {
        var length = RandomAccess.GetLength(handle);
        var header = new byte[HeaderBytes];
        var payload = Array.Empty<byte>();
        long position = 0;
        string? problem = null;
        while (position < length)
        {
            problem = CheckRecord(handle, position, length, header, ref payload, out var recordLength);
            if (problem is not null) { break; }
            position += recordLength;
        }

        if (problem is null) { return (length, null); }

        if (FindValidRecord(handle, position + 1, length) is { } next)
        {
            throw new JournalException(
                $"{path}: the record at offset {position} is corrupt ({problem}), and a valid record follows it at offset {next}, so this is damage, " +
                "not a write cut short by a crash. Tessera does not start rather than skip acknowledged events: restore the file from a backup, " +
                "or move the journal directory aside to start a new journal (its events not yet indexed are then not indexed).");
        }

        RandomAccess.SetLength(handle, position);
        RandomAccess.FlushToDisk(handle);
        return (position, new JournalRepair(path, position, length - position, problem));
    }

    private static string? CheckRecord(SafeFileHandle handle, long position, long fileLength, byte[] header, ref byte[] payload, out long recordLength)
    {
        recordLength = 0;
        if (fileLength - position < HeaderBytes) { return $"an incomplete header ({fileLength - position} bytes)"; }
        ReadExactly(handle, header, position);
        var problem = ParseHeader(header, out var payloadLength, out var payloadHash);
        if (problem is not null) { return problem; }
        if (position + HeaderBytes + payloadLength > fileLength)
        {
            return $"a record of {payloadLength} bytes that runs {position + HeaderBytes + payloadLength - fileLength} bytes past the end of the file";
        }

        if (payload.Length < payloadLength) { payload = new byte[payloadLength]; }
        ReadExactly(handle, payload.AsSpan(0, payloadLength), position + HeaderBytes);
        if (XxHash3.HashToUInt64(payload.AsSpan(0, payloadLength)) != payloadHash) { return "the payload's checksum does not match"; }
        recordLength = HeaderBytes + payloadLength;
        return null;
    }

    /// <summary>The offset of the first whole, valid record at or after <paramref name="from"/>, if any.</summary>
    private static long? FindValidRecord(SafeFileHandle handle, long from, long length)
    {
        if (length - from < HeaderBytes) { return null; }
        var region = new byte[length - from];
        ReadExactly(handle, region, from);
        Span<byte> marker = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(marker, Magic);
        for (var at = 0; at <= region.Length - HeaderBytes;)
        {
            var found = region.AsSpan(at, region.Length - at).IndexOf(marker);
            if (found < 0 || at + found > region.Length - HeaderBytes) { return null; }
            at += found;
            if (ParseHeader(region.AsSpan(at, HeaderBytes), out var payloadLength, out var payloadHash) is null
                && at + HeaderBytes + payloadLength <= region.Length
                && XxHash3.HashToUInt64(region.AsSpan(at + HeaderBytes, payloadLength)) == payloadHash)
            {
                return from + at;
            }

            at++;
        }

        return null;
    }

    internal static void ReadExactly(SafeFileHandle handle, Span<byte> into, long offset)
    {
        while (into.Length > 0)
        {
            var read = RandomAccess.Read(handle, into, offset);
            if (read == 0) { throw new EndOfStreamException($"the file ends {into.Length} bytes early"); }
            into = into[read..];
            offset += read;
        }
    }

    private static string ReadOrCreateId(string directory)
    {
        var path = Path.Combine(directory, IdFile);
        if (File.Exists(path))
        {
            var text = File.ReadAllText(path).Trim();
            if (text.Length == 32 && text.All(char.IsAsciiHexDigitLower)) { return text; }
            throw new JournalException($"{path}: '{text}' is not a journal id (32 lower-case hex digits); the file was changed by hand.");
        }

        var id = Guid.NewGuid().ToString("N");
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            file.Write(Encoding.ASCII.GetBytes(id + "\n"));
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        DirectorySync.Sync(directory);
        return id;
    }

    private static List<Segment> ListSegments(string directory)
    {
        var segments = new List<Segment>();
        foreach (var path in System.IO.Directory.EnumerateFiles(directory, "*" + SegmentExtension))
        {
            var name = Path.GetFileNameWithoutExtension(path);
            if (name.Length == 20 && long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var start)) { segments.Add(new Segment(start, path)); }
        }

        segments.Sort((a, b) => a.Base.CompareTo(b.Base));
        return segments;
    }

    private static string SegmentPath(string directory, long start) =>
        Path.Combine(directory, start.ToString("D20", CultureInfo.InvariantCulture) + SegmentExtension);
}

/// <summary>What opening the journal cut off: <paramref name="BytesDropped"/> bytes from <paramref name="Offset"/> of <paramref name="File"/>, and why.</summary>
public sealed record JournalRepair(string File, long Offset, long BytesDropped, string Reason);
