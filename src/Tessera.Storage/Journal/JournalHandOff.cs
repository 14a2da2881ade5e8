using Tessera.Core.Collection;

namespace Tessera.Storage.Journal;

/// <summary>
/// The records this process appended, kept in memory up to a bound for the reader that follows the journal's end
/// (the indexer): it takes a record's events from here instead of reading them back and decoding them. A record is
/// added once it is synced, before the journal's end moves past it, so what the reader takes is exactly what the file
/// holds (the codec round-trips every field). Records the reader skipped or that fell out of the bound are read from
/// the file as before. Decoding was a fifth of everything the server allocated at 10,000 events/s
/// (docs/benchmarks.md), and each allocation there brings the next collection, and its pause, nearer.
/// </summary>
/// <remarks>
/// Bounded by events and by the records' size in the journal (about their JSON's): 20,000 events of Segment's largest
/// (32 KB) would otherwise be 640 MB held.
/// </remarks>
internal sealed class JournalHandOff(int maxEvents, long maxBytes)
{
    private readonly Lock _gate = new();
    private readonly Queue<(long Start, long End, CollectedEvent[] Events)> _records = new();
    private int _events;
    private long _bytes;

    /// <summary>Keeps the record [<paramref name="start"/>, <paramref name="end"/>) holding <paramref name="events"/> (copied: the caller reuses its list).</summary>
    public void Add(long start, long end, IReadOnlyList<CollectedEvent> events)
    {
        if (events.Count > maxEvents || end - start > maxBytes) { return; }
        var copy = events.ToArray();
        lock (_gate)
        {
            while ((_events + copy.Length > maxEvents || _bytes + (end - start) > maxBytes) && _records.TryDequeue(out var oldest)) { Forget(oldest); }
            _records.Enqueue((start, end, copy));
            _events += copy.Length;
            _bytes += end - start;
        }
    }

    private void Forget((long Start, long End, CollectedEvent[] Events) record)
    {
        _events -= record.Events.Length;
        _bytes -= record.End - record.Start;
    }

    /// <summary>
    /// Takes the record that starts at <paramref name="position"/> and ends by <paramref name="limit"/> into
    /// <paramref name="into"/>; false when it is not held. Records before <paramref name="position"/> are dropped.
    /// </summary>
    public bool TryTake(long position, long limit, List<CollectedEvent> into, out long end)
    {
        lock (_gate)
        {
            while (_records.TryPeek(out var passed) && passed.Start < position) { Forget(_records.Dequeue()); }

            if (_records.TryPeek(out var next) && next.Start == position && next.End <= limit)
            {
                Forget(_records.Dequeue());
                into.AddRange(next.Events);
                end = next.End;
                return true;
            }
        }

        end = 0;
        return false;
    }
}
