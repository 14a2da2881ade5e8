using DuckDB.NET.Data;

/// <summary>A statement run for its effect, the one helper both modes of this benchmark use.</summary>
internal static class Sql
{
    public static void Execute(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
