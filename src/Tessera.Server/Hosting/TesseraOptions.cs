using Tessera.Server.Activation;

namespace Tessera.Server.Hosting;

/// <summary>
/// Every setting of the server, with its default. The CLI's flags and the configuration section <c>Tessera</c>
/// bind to this one type; to add a setting, add a property here with its default and a line in docs/configuration.md.
/// </summary>
public sealed class TesseraOptions
{
    /// <summary>Where Kestrel listens.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>The embedded store's directory; the DuckDB file is <c>tessera.duckdb</c> inside it.</summary>
    public string DataDir { get; set; } = "./data";

    /// <summary><c>duckdb</c> (default) or <c>postgres</c>.</summary>
    public string Store { get; set; } = "duckdb";

    /// <summary>Npgsql connection string, for <c>--store postgres</c>.</summary>
    public string? Postgres { get; set; }

    /// <summary>Seed a demo data set when the store holds no events.</summary>
    public bool Demo { get; set; }

    /// <summary>Bearer token with full rights on /api. Default: <c>TESSERA_ADMIN_TOKEN</c>, else generated once and printed.</summary>
    public string? AdminToken { get; set; } = Environment.GetEnvironmentVariable("TESSERA_ADMIN_TOKEN");

    /// <summary>Ensures a source with this write key exists. Default: <c>TESSERA_WRITE_KEY</c>.</summary>
    public string? WriteKey { get; set; } = Environment.GetEnvironmentVariable("TESSERA_WRITE_KEY");

    /// <summary>How long a resent messageId from the same source is recognised and stored once.</summary>
    public TimeSpan DedupWindow { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Events waiting for the group commit before new requests wait their turn (back-pressure).</summary>
    public int MaxPendingEvents { get; set; } = 100_000;

    /// <summary>Most events written in one commit.</summary>
    public int MaxEventsPerCommit { get; set; } = 20_000;

    /// <summary>DuckDB's memory cap in MB.</summary>
    public int DuckDbMemoryLimitMb { get; set; } = 256;

    /// <summary>A JSON file with the identity rules (identifier types, paths, normalisation, blocked values, limits, priorities); null for the defaults.</summary>
    public string? IdentityRulesFile { get; set; }

    /// <summary>A JSON file with the trait merge policies (default, per trait, source priority); null for "latest wins".</summary>
    public string? ProfileRulesFile { get; set; }

    /// <summary>A JSON file with a list of computed trait definitions; these cannot be deleted through the API.</summary>
    public string? ComputedTraitsFile { get; set; }

    /// <summary>Print the startup banner (keys, URLs) to standard output.</summary>
    public bool PrintBanner { get; set; } = true;

    /// <summary>Delivery to destinations: retries, timeouts, claims (see <see cref="ActivationOptions"/>).</summary>
    public ActivationOptions Activation { get; set; } = new();

    public string DuckDbPath => Path.Combine(DataDir, "tessera.duckdb");
}
