using System.Net;
using Tessera.Testing;

namespace Tessera.Sdk.Tests;

/// <summary>
/// The CORS preflight analytics-next triggers: it posts text/plain, but with an <c>Authorization</c> header (and
/// <c>X-Retry-Count</c> on retries), which makes every cross-origin send a preflighted request. The Chromium tests
/// prove it end to end; this names the exact headers, without a browser, so a regression says what broke.
/// </summary>
public sealed class BrowserPreflightTests
{
    [Theory]
    [InlineData("v1/t")]
    [InlineData("v1/b")]
    [InlineData("v1/projects/test-write-key/settings")]
    public async Task collection_api_allows_the_browser_sdk_preflight_from_any_origin(string path)
    {
        await using var server = await TestServer.StartAsync();
        using var preflight = new HttpRequestMessage(HttpMethod.Options, path);
        preflight.Headers.Add("Origin", "http://shop.example:8080");
        preflight.Headers.Add("Access-Control-Request-Method", path.EndsWith("settings", StringComparison.Ordinal) ? "GET" : "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization,content-type,x-retry-count");

        using var response = await server.Anonymous.SendAsync(preflight);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("http://shop.example:8080", Assert.Single(response.Headers.GetValues("Access-Control-Allow-Origin")));
        var allowed = string.Join(",", response.Headers.GetValues("Access-Control-Allow-Headers")).ToLowerInvariant();
        Assert.All(["authorization", "content-type", "x-retry-count"], h => Assert.Contains(h, allowed, StringComparison.Ordinal));
    }
}
