using System.Runtime.InteropServices;
using DuckDB.NET.Data;
using Tessera.Core.Collection;

namespace Tessera.Storage.DuckDb;

public static class AppenderRows
{
    /// <summary>Appends a message's JSON to a VARCHAR column: its UTF-8 bytes as they are (DuckDB's strings are UTF-8), a string only when held as one.</summary>
    public static IDuckDBAppenderRow AppendRaw(this IDuckDBAppenderRow row, RawJson raw) =>
        raw.IsUtf8 ? row.AppendValue(raw.Utf8ForReadOnlyApi()) : row.AppendValue(raw.ToString());

    /// <summary>
    /// Appends UTF-8 text to a VARCHAR column as it is, without the string DuckDB.NET would encode into memory of its own
    /// (the appender takes a <see cref="Span{T}"/> but only reads it).
    /// </summary>
    public static IDuckDBAppenderRow AppendUtf8(this IDuckDBAppenderRow row, ReadOnlySpan<byte> utf8) =>
        utf8.IsEmpty ? row.AppendValue(string.Empty) : row.AppendValue(MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(utf8), utf8.Length));

    /// <summary>Appends a packed string column (<see cref="Utf8Text"/>): its UTF-8 as it is, or null.</summary>
    internal static IDuckDBAppenderRow AppendText(this IDuckDBAppenderRow row, Utf8Text text) =>
        text.IsNull ? row.AppendNullValue() : row.AppendUtf8(text.Span);
}
