using System.Net;
using System.Text;

namespace Tessera.Testing;

/// <summary>Sending one message through the collection API, as the suites do, a line each.</summary>
public static class TestServerMessages
{
    /// <summary>POSTs <paramref name="json"/> to <c>/v1/{type}</c> with the test write key and asserts the 200.</summary>
    public static async Task SendAsync(this TestServer server, string type, string json)
    {
        using var response = await server.Collect.PostAsync($"v1/{type}", new StringContent(json, Encoding.UTF8, "application/json"));
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new Xunit.Sdk.XunitException($"POST /v1/{type} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }
}
