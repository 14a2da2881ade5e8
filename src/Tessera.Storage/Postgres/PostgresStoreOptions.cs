using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Tessera.Storage.Postgres;

/// <summary>
/// Settings of the PostgreSQL store. <see cref="ConnectionString"/> is an Npgsql connection string; its
/// <c>Search Path</c>, when given, names the schema Tessera keeps its tables in (created when missing), so several
/// workspaces or test runs can share one database.
/// </summary>
public sealed record PostgresStoreOptions(string ConnectionString)
{
    /// <summary>How long a (source, messageId) pair is remembered to drop a resent message. Segment's default: 7 days.</summary>
    public TimeSpan DedupWindow { get; init; } = TimeSpan.FromDays(7);

    /// <summary>How often one process deletes remembered messageIds older than the window (space only: expiry is checked on insert).</summary>
    public TimeSpan PurgeInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// How often an idle process applies the events other processes committed, so its profile reads stay fresh
    /// (an appending process catches up anyway, under the resolution lock). Zero turns it off.
    /// </summary>
    public TimeSpan CatchUpInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Where the store says what its schema upgrades do, step by step with their durations. Nothing is logged by default.</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>Stops migrating at this version; tests use it to build a database as an older release left it.</summary>
    internal int? MigrateUpTo { get; init; }
}
