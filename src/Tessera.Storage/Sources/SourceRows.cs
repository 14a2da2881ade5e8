using System.Data.Common;

namespace Tessera.Storage.Sources;

/// <summary>How the sources table maps to <see cref="Source"/>, the same for every store.</summary>
internal static class SourceRows
{
    public const string Columns = "id, name, workspace, write_key, created_at, revoked_at";

    public static Source Read(DbDataReader reader) => new(
        reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
        reader.GetFieldValue<DateTimeOffset>(4),
        reader.IsDBNull(5) ? null : reader.GetFieldValue<DateTimeOffset>(5));
}
