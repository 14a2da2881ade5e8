using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Tessera.LoadGen;

/// <summary>
/// The activation benchmarks' webhook: Kestrel on a loopback port in this process, answering 200 at once and
/// recording, for every delivered item, its user id and the <see cref="Stopwatch"/> time the request arrived (the
/// same clock the probes start from). It also answers <c>/v1/batch</c> as a Segment-compatible endpoint, where an
/// item is a forwarded message known by its <c>messageId</c>.
/// </summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, long> _firstArrival = new(StringComparer.Ordinal);
    private long _requests;
    private long _items;
    private long _lastArrival;

    private WebhookReceiver(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public string Url { get; }

    /// <summary>The receiver as a Segment-compatible API base (<c>/v1/batch</c> is added by the destination).</summary>
    public string BaseUrl => Url[..^"/hook".Length];

    public long Requests => Interlocked.Read(ref _requests);

    public long Items => Interlocked.Read(ref _items);

    public int DistinctUsers => _firstArrival.Count;

    /// <summary>When the last request arrived (<see cref="Stopwatch"/> ticks).</summary>
    public long LastArrival => Interlocked.Read(ref _lastArrival);

    public bool TryArrival(string userId, out long timestamp) => _firstArrival.TryGetValue(userId, out timestamp);

    public static async Task<WebhookReceiver> StartAsync()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 64 * 1024 * 1024);
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new WebhookReceiver(app, $"http://127.0.0.1:{port}/hook");
        app.MapPost("/{**path}", async (HttpContext context) =>
        {
            var arrived = Stopwatch.GetTimestamp();
            using var document = await JsonDocument.ParseAsync(context.Request.Body);
            var root = document.RootElement;
            var items = root.TryGetProperty("batch", out var batch) ? batch.EnumerateArray().ToList() : [root];
            foreach (var item in items)
            {
                if (item.TryGetProperty("identifiers", out var ids) && ids.TryGetProperty("user_id", out var user) && user.GetString() is { } id)
                {
                    receiver._firstArrival.TryAdd(id, arrived);
                }
                else if (item.TryGetProperty("messageId", out var messageId) && messageId.GetString() is { } mid)
                {
                    receiver._firstArrival.TryAdd(mid, arrived);
                }
            }

            Interlocked.Add(ref receiver._items, items.Count);
            Interlocked.Increment(ref receiver._requests);
            Interlocked.Exchange(ref receiver._lastArrival, arrived);
            context.Response.StatusCode = 200;
        });
        await app.StartAsync();
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
