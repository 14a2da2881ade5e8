using Tessera.Testing;

namespace Tessera.Collection.Tests;

/// <summary>One server per test class; tests keep apart by using their own user ids and message ids.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
