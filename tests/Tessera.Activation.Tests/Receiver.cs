using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Tessera.Activation.Tests;

/// <summary>
/// A real webhook receiver: Kestrel on a loopback port, recording every request (headers, raw body, arrival). It can
/// answer with an error status for a while, or go away (its port closed) and come back on the same port.
/// </summary>
public sealed class Receiver : IAsyncDisposable
{
    private readonly ConcurrentQueue<Received> _requests = new();
    private WebApplication? _app;
    private int _failures;

    private Receiver(int port) => Port = port;

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/hook";

    /// <summary>The status to answer with while <see cref="FailNext"/> is above zero.</summary>
    public int FailStatus { get; set; } = 500;

    public IReadOnlyList<Received> Requests => [.. _requests];

    public sealed record Received(DateTimeOffset At, long Timestamp, string Path, IReadOnlyDictionary<string, string> Headers, byte[] Body, int AnsweredWith)
    {
        public string Text => Encoding.UTF8.GetString(Body);

        public JsonObject Json => JsonNode.Parse(Body)!.AsObject();

        public string Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out var value) ? value : throw new KeyNotFoundException($"no header {name}");

        /// <summary>The items of the body: the batch's, or the one object.</summary>
        public IReadOnlyList<JsonObject> Items => Json["batch"] is JsonArray batch ? [.. batch.Select(i => i!.AsObject())] : [Json];
    }

    /// <summary>Answers the next <paramref name="count"/> requests with <see cref="FailStatus"/>.</summary>
    public void FailNext(int count) => Interlocked.Exchange(ref _failures, count);

    /// <summary>Starts a receiver on <paramref name="port"/>, or on a free port when 0 (<see cref="Testing.TesseraProcess.OnFreePortAsync{T}"/>).</summary>
    public static Task<Receiver> StartAsync(int port = 0) =>
        port != 0 ? UpOnAsync(port) : Testing.TesseraProcess.OnFreePortAsync(async free =>
        {
            try
            {
                return await UpOnAsync(free);
            }
            catch (IOException e) when (e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                throw new Testing.PortTakenException(free, e);
            }
        });

    private static async Task<Receiver> UpOnAsync(int port)
    {
        var receiver = new Receiver(port);
        await receiver.UpAsync();
        return receiver;
    }

    /// <summary>Listens (again) on <see cref="Port"/>.</summary>
    public async Task UpAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{Port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapPost("/{**path}", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            var status = Interlocked.Decrement(ref _failures) >= 0 ? FailStatus : 200;
            if (status == 200) { Interlocked.Exchange(ref _failures, 0); }
            var headers = context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
            _requests.Enqueue(new Received(DateTimeOffset.UtcNow, Stopwatch.GetTimestamp(), context.Request.Path, headers, body.ToArray(), status));
            context.Response.StatusCode = status;
            await context.Response.WriteAsync(status == 200 ? "ok" : "not now");
        });
        try
        {
            await app.StartAsync();
        }
        catch (IOException)
        {
            await app.DisposeAsync();
            throw;
        }

        _app = app;
    }

    /// <summary>Goes away: the port is closed, so connections are refused.</summary>
    public async Task DownAsync()
    {
        if (_app is null) { return; }
        await _app.StopAsync();
        await _app.DisposeAsync();
        _app = null;
    }

    public async ValueTask DisposeAsync() => await DownAsync();

    /// <summary>The items of every request answered 200, in arrival order.</summary>
    public List<JsonObject> Delivered() => [.. Requests.Where(r => r.AnsweredWith == (int)HttpStatusCode.OK).SelectMany(r => r.Items)];
}
