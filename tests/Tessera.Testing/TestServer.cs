using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Tessera.Server.Hosting;
using Tessera.Storage;

namespace Tessera.Testing;

/// <summary>
/// Tessera hosted in this process on a real loopback port, over a fresh store: tests go through Kestrel and the
/// whole HTTP pipeline, exactly as a client would.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    public const string AdminToken = "test-admin-token";
    public const string WriteKey = "test-write-key";

    /// <summary>
    /// Set to <c>postgres</c> (with <see cref="TestPostgres.Variable"/>) to run HTTP tests written for the embedded
    /// store against PostgreSQL instead: each data directory gets its own schema (left behind for inspection).
    /// </summary>
    public const string StoreVariable = "TESSERA_TEST_STORE";

    private readonly WebApplication _app;

    private TestServer(WebApplication app, TesseraOptions options, Uri baseAddress)
    {
        _app = app;
        Options = options;
        BaseAddress = baseAddress;
        Collect = new HttpClient { BaseAddress = baseAddress };
        Collect.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(WriteKey + ":")));
        Admin = new HttpClient { BaseAddress = baseAddress };
        Admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        Anonymous = new HttpClient { BaseAddress = baseAddress };
    }

    public TesseraOptions Options { get; }
    public Uri BaseAddress { get; }

    /// <summary>Sends with the write key as Basic auth, as Segment's server SDKs do.</summary>
    public HttpClient Collect { get; }

    /// <summary>Sends with the admin bearer token.</summary>
    public HttpClient Admin { get; }

    /// <summary>Sends no credentials.</summary>
    public HttpClient Anonymous { get; }

    public IServiceProvider Services => _app.Services;

    public ITesseraStore Store => _app.Services.GetRequiredService<ITesseraStore>();

    /// <summary>Starts a server on a free port. <paramref name="dataDir"/> reuses a store (for restart tests); null makes a new one.</summary>
    /// <param name="clock">The server's clock; a fake one lets a test move time (an hour's wait) without waiting.</param>
    public static async Task<TestServer> StartAsync(string? dataDir = null, Action<TesseraOptions>? configure = null, Action<TesseraStorageBuilder>? storage = null, TimeProvider? clock = null)
    {
        var options = new TesseraOptions
        {
            Urls = "http://127.0.0.1:0",
            DataDir = dataDir ?? TempDirectory.Create("tessera-test"),
            AdminToken = AdminToken,
            WriteKey = WriteKey,
            PrintBanner = false,
        };
        if (Environment.GetEnvironmentVariable(StoreVariable) == "postgres")
        {
            // One schema per data directory, so a restart test that reuses the directory reopens the same store.
            var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(options.DataDir))))[..20];
            options.Store = "postgres";
            options.Postgres = new Npgsql.NpgsqlConnectionStringBuilder(TestPostgres.ConnectionString) { SearchPath = $"srv_{hash}" }.ConnectionString;
        }

        configure?.Invoke(options);
        var app = TesseraServer.Build(options, storage, clock: clock);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestServer(app, options, new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal) + "/"));
    }

    public async Task StopAsync() => await _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        Collect.Dispose();
        Admin.Dispose();
        Anonymous.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
