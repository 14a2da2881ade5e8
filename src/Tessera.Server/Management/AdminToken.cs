using System.Security.Cryptography;
using System.Text;

namespace Tessera.Server.Management;

/// <summary>The admin bearer token, kept only as its SHA-256 hash and compared in constant time.</summary>
public sealed class AdminToken
{
    private byte[] _hash = [];

    public const string SettingKey = "admin_token_sha256";

    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    public void Set(string hashHex) => _hash = Convert.FromHexString(hashHex);

    public bool Matches(string? presented) =>
        presented is { Length: > 0 } && _hash.Length > 0 &&
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), _hash);

    /// <summary>Endpoint filter for <c>/api</c>: a missing or wrong token gets 401 problem+json.</summary>
    public static async ValueTask<object?> RequireAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var token = http.RequestServices.GetRequiredService<AdminToken>();
        var header = http.Request.Headers.Authorization.ToString();
        var presented = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
        if (token.Matches(presented)) { return await next(context); }
        http.Response.Headers.WWWAuthenticate = "Bearer";
        return Hosting.Problems.Unauthorized(presented is null
            ? "Authorization: send the admin token as 'Authorization: Bearer <token>'"
            : "Authorization: the bearer token is not the admin token");
    }
}
