namespace Tessera.Storage;

/// <summary>
/// The store cannot serve the request right now (the database is down, restarting or out of connections).
/// Callers answer 503 with Retry-After; nothing was acknowledged.
/// </summary>
public sealed class StoreUnavailableException : Exception
{
    public StoreUnavailableException() { }
    public StoreUnavailableException(string message) : base(message) { }
    public StoreUnavailableException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>How long a client should wait before it tries again (the 503's Retry-After): a moment unless the cause says longer.</summary>
    public int RetryAfterSeconds { get; init; } = 1;
}

/// <summary>A store error translated into words an operator understands, with the failing statement when there is one.</summary>
public sealed class StoreException : Exception
{
    public StoreException() { }
    public StoreException(string message) : base(message) { }
    public StoreException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The SQL that failed, for the log; never shown to API callers.</summary>
    public string? Sql { get; init; }
}
