using Npgsql;

namespace Tessera.Testing;

/// <summary>
/// The PostgreSQL that tests share, named by <c>TESSERA_TEST_POSTGRES</c> (set by <c>scripts/deps/postgres.sh</c>).
/// Each user takes a fresh schema, so test classes never see each other's rows. Missing configuration fails the
/// test with a message that says what to run: a PostgreSQL test never skips silently.
/// </summary>
public static class TestPostgres
{
    public const string Variable = "TESSERA_TEST_POSTGRES";

    /// <summary>The shared server's connection string; throws with instructions when it is not configured.</summary>
    public static string ConnectionString =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{Variable} is not set, so the PostgreSQL tests cannot run. Run `source scripts/deps/postgres.sh` " +
                "(test.sh does it) to install and start the test cluster, or set it to an Npgsql connection string of a server you may write to.");

    /// <summary>A new, empty schema name; pass the returned connection string to a store or a tessera process.</summary>
    public static (string Schema, string ConnectionString) NewSchema(string prefix = "t")
    {
        var schema = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 17, 63)];
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString) { SearchPath = schema };
        return (schema, builder.ConnectionString);
    }

    /// <summary>Drops <paramref name="schema"/> with everything in it; quiet when it never came to exist.</summary>
    public static async Task DropSchemaAsync(string schema)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs one statement on <paramref name="connectionString"/> and returns the first column of the first row.</summary>
    public static async Task<object?> ScalarAsync(string connectionString, string sql, params object[] parameters)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var p in parameters) { command.Parameters.Add(new NpgsqlParameter { Value = p }); }
        return await command.ExecuteScalarAsync();
    }
}
