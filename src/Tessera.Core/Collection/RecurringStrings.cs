using System.Text;

namespace Tessera.Core.Collection;

/// <summary>
/// Strings that recur from message to message (source ids, event names), each decoded from UTF-8 once: events wait in
/// memory for the store's commit, and a string of their own each for the same few values was garbage made twice, as
/// allocation and as what each collection copies. Looks back at the last <c>capacity</c> distinct values; not
/// thread-safe (one per decoding, or per thread).
/// </summary>
public sealed class RecurringStrings(int capacity)
{
    /// <summary>Longer values are decoded each time: they rarely recur, and comparing them costs more than decoding.</summary>
    private const int MaxLength = 128;

    private readonly (byte[] Utf8, string Value)[] _entries = new (byte[], string)[capacity];
    private int _count;
    private int _next;

    public string Get(ReadOnlySpan<byte> utf8)
    {
        for (var i = 0; i < _count; i++)
        {
            if (utf8.SequenceEqual(_entries[i].Utf8)) { return _entries[i].Value; }
        }

        var value = Encoding.UTF8.GetString(utf8);
        if (utf8.Length <= MaxLength)
        {
            _entries[_next] = (utf8.ToArray(), value);
            _next = (_next + 1) % _entries.Length;
            _count = Math.Min(_count + 1, _entries.Length);
        }

        return value;
    }
}
