namespace Tessera.Storage.Sources;

/// <summary>Where events come from (a website, an app, a server): each has its own write key.</summary>
public sealed record Source(string Id, string Name, string Workspace, string WriteKey, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt)
{
    public bool IsRevoked => RevokedAt is not null;
}
