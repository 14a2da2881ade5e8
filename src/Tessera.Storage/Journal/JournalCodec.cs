using System.Buffers;
using Tessera.Core.Collection;

namespace Tessera.Storage.Journal;

/// <summary>
/// A record's payload: the varint count of its events, then the events in <see cref="EventCodec"/>'s form, the
/// group's requests' <see cref="EncodedEvents"/> one after another (copied as they are: the requests encoded them).
/// </summary>
internal static class JournalCodec
{
    /// <summary>Writes the payload; returns its event count.</summary>
    public static int Write(IReadOnlyList<EncodedEvents> groups, IBufferWriter<byte> output)
    {
        var count = 0;
        foreach (var group in groups) { count += group.Count; }
        EventCodec.WriteVarint(output, (uint)count);
        foreach (var group in groups) { output.Write(group.Bytes); }
        return count;
    }

    /// <summary>Decodes a payload whose checksum matched; throws <see cref="FormatException"/> when it does not parse (a bug, not a disk error).</summary>
    public static void Read(ReadOnlySpan<byte> payload, List<CollectedEvent> into) => EventCodec.ReadCounted(payload, into);
}
