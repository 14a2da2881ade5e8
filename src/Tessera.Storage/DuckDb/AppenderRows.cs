using DuckDB.NET.Data;
using Tessera.Core.Collection;

namespace Tessera.Storage.DuckDb;

public static class AppenderRows
{
    /// <summary>Appends a message's JSON to a VARCHAR column: its UTF-8 bytes as they are (DuckDB's strings are UTF-8), a string only when held as one.</summary>
    public static IDuckDBAppenderRow AppendRaw(this IDuckDBAppenderRow row, RawJson raw) =>
        raw.IsUtf8 ? row.AppendValue(raw.Utf8ForReadOnlyApi()) : row.AppendValue(raw.ToString());
}
