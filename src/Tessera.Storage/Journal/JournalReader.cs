using System.IO.Hashing;
using Microsoft.Win32.SafeHandles;
using Tessera.Core.Collection;

namespace Tessera.Storage.Journal;

/// <summary>
/// Reads a journal's records in order from a position, checking each one's checksums. Safe beside the writer:
/// it reads only up to the limit it is given (the journal's durable end), and a deleted segment it still has
/// open stays readable. One reader per thread.
/// </summary>
public sealed class JournalReader : IDisposable
{
    private readonly EventJournal _journal;
    private readonly byte[] _header = new byte[EventJournal.HeaderBytes];
    private byte[] _payload = new byte[64 * 1024];
    private EventJournal.Segment? _segment;
    private SafeFileHandle? _handle;

    internal JournalReader(EventJournal journal, long position)
    {
        _journal = journal;
        Position = position;
    }

    /// <summary>The position of the next record to read.</summary>
    public long Position { get; private set; }

    /// <summary>
    /// Reads the record at <see cref="Position"/> from the file into <paramref name="into"/> and moves past it; false when
    /// <see cref="Position"/> has reached <paramref name="limit"/>. A record that fails its checks throws
    /// <see cref="JournalException"/> naming the file and offset.
    /// </summary>
    public bool TryRead(long limit, List<CollectedEvent> into)
    {
        if (Position >= limit) { return false; }
        var segment = _journal.SegmentAt(Position);
        if (!ReferenceEquals(segment, _segment))
        {
            _handle?.Dispose();
            _handle = null;
            _handle = File.OpenHandle(segment.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            _segment = segment;
        }

        var offset = Position - segment.Base;
        try
        {
            EventJournal.ReadExactly(_handle!, _header, offset);
        }
        catch (EndOfStreamException e)
        {
            throw Corrupt(segment, offset, e.Message);
        }

        if (EventJournal.ParseHeader(_header, out var length, out var hash) is { } problem) { throw Corrupt(segment, offset, problem); }
        var end = Position + EventJournal.HeaderBytes + length;
        if (end > limit) { throw Corrupt(segment, offset, $"the record ends at journal position {end}, past the journal's end at {limit}"); }
        if (_payload.Length < length) { _payload = new byte[Math.Max(length, _payload.Length * 2)]; }
        var payload = _payload.AsSpan(0, length);
        try
        {
            EventJournal.ReadExactly(_handle!, payload, offset + EventJournal.HeaderBytes);
        }
        catch (EndOfStreamException e)
        {
            throw Corrupt(segment, offset, e.Message);
        }

        if (XxHash3.HashToUInt64(payload) != hash) { throw Corrupt(segment, offset, "the payload's checksum does not match"); }
        try
        {
            JournalCodec.Read(payload, into);
        }
        catch (FormatException e)
        {
            throw Corrupt(segment, offset, $"the payload does not decode: {e.Message}");
        }

        Position = end;
        return true;
    }

    public void Dispose() => _handle?.Dispose();

    private JournalException Corrupt(EventJournal.Segment segment, long offset, string problem) => new(
        $"{segment.Path}: the record at offset {offset} (journal position {Position}) is corrupt: {problem}. The events from there on cannot be " +
        "indexed; restore the file from a backup, or move the journal directory aside to start a new journal (its events not yet indexed are then not indexed).");
}
