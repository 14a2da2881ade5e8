using System.Net.Sockets;
using Npgsql;

namespace Tessera.Storage.Postgres;

/// <summary>
/// The one place where PostgreSQL's and Npgsql's errors become messages an operator can act on. What means "the
/// database cannot take work now" (down, restarting, shutting down, out of connections, out of disk) becomes
/// <see cref="StoreUnavailableException"/>, which the API answers with 503 and Retry-After; the rest becomes
/// <see cref="StoreException"/> carrying the failing statement.
/// </summary>
internal static class PostgresErrors
{
    /// <summary>Errors after which retrying the whole transaction at once is right (another process won a race).</summary>
    public static bool IsRetryableConflict(Exception error) =>
        error is PostgresException { SqlState: PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure };

    /// <summary>True when the error says the connection or the server is gone, so pooled connections are suspect.</summary>
    public static bool IsConnectionLoss(Exception error) => error switch
    {
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState is
            PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow,
        NpgsqlException n => n.IsTransient || n.InnerException is SocketException or IOException or TimeoutException,
        _ => false,
    };

    public static Exception Translate(Exception error, string? sql, NpgsqlConnectionStringBuilder where)
    {
        var server = $"PostgreSQL at {where.Host}:{where.Port} (database '{where.Database ?? where.Username}')";
        if (error is PostgresException p)
        {
            return p.SqlState switch
            {
                PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow =>
                    new StoreUnavailableException($"{server} is shutting down or starting up ({p.MessageText}).", p),
                PostgresErrorCodes.TooManyConnections or PostgresErrorCodes.ConfigurationLimitExceeded =>
                    new StoreUnavailableException($"{server} has no free connection ({p.MessageText}); lower Maximum Pool Size in --postgres or raise the server's connection limit.", p),
                PostgresErrorCodes.DiskFull or PostgresErrorCodes.OutOfMemory or PostgresErrorCodes.InsufficientResources =>
                    new StoreUnavailableException($"{server} is out of resources ({p.MessageText}).", p),
                PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure =>
                    new StoreUnavailableException($"{server} kept reporting write conflicts with another Tessera process ({p.MessageText}).", p),
                PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification =>
                    new StoreException($"{server} refused the login of user '{where.Username}': check Username and Password in --postgres ({p.MessageText}).", p) { Sql = sql },
                PostgresErrorCodes.InvalidCatalogName =>
                    new StoreException($"{server}: the database does not exist; create it (createdb) or fix Database in --postgres.", p) { Sql = sql },
                PostgresErrorCodes.InsufficientPrivilege =>
                    new StoreException($"{server}: user '{where.Username}' lacks a privilege Tessera needs ({p.MessageText}); grant it rights on the database and schema.", p) { Sql = sql },
                PostgresErrorCodes.ReadOnlySqlTransaction =>
                    new StoreUnavailableException($"{server} is read-only (a standby?); point --postgres at the primary.", p),
                PostgresErrorCodes.UniqueViolation =>
                    new StoreException($"{server}: a row with this key already exists ({p.ConstraintName ?? p.MessageText}).", p) { Sql = sql },
                _ when p.SqlState.StartsWith("08", StringComparison.Ordinal) =>
                    new StoreUnavailableException($"{server} dropped the connection ({p.MessageText}).", p),
                _ => new StoreException($"{server} failed{(sql is null ? "" : $" during '{Shorten(sql)}'")}: {p.SqlState} {p.MessageText}", p) { Sql = sql },
            };
        }

        if (IsConnectionLoss(error) || error is NpgsqlException && error.Message.Contains("pool", StringComparison.OrdinalIgnoreCase))
        {
            return new StoreUnavailableException($"{server} cannot be reached ({error.GetBaseException().Message}).", error);
        }

        return new StoreException($"{server} failed{(sql is null ? "" : $" during '{Shorten(sql)}'")}: {error.Message}", error) { Sql = sql };
    }

    private static string Shorten(string sql)
    {
        var line = sql.Trim().Split('\n')[0];
        return line.Length <= 60 ? line : line[..60] + "…";
    }
}
