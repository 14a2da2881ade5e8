using System.Buffers;
using System.IO.Compression;
using System.Text.Json;
using Tessera.Core.Collection;

namespace Tessera.Server.Collection;

/// <summary>A collection request's body: gzip undone, the 500 KB limit enforced on the decompressed bytes.</summary>
internal sealed class CollectionBody : IDisposable
{
    private const int Limit = CollectionLimits.MaxBatchBytes;
    private const int FirstGuess = 64 * 1024;
    private byte[] _buffer = [];

    public enum Outcome { Ok, TooLarge, BadEncoding }

    public int Length { get; private set; }

    public ReadOnlyMemory<byte> Bytes => _buffer.AsMemory(0, Length);

    public async Task<Outcome> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var body = request.Body;
        var encoding = request.Headers.ContentEncoding.ToString();
        var gzip = false;
        if (encoding.Length > 0 && !encoding.Equals("identity", StringComparison.OrdinalIgnoreCase))
        {
            if (!encoding.Equals("gzip", StringComparison.OrdinalIgnoreCase)) { return Outcome.BadEncoding; }
            body = new GZipStream(body, CompressionMode.Decompress, leaveOpen: true);
            gzip = true;
        }

        // The buffer fits the body, not the limit: renting 500 KB for every request would hold half a megabyte
        // (the pool's bucket) per concurrent request. A declared length sizes it at once; otherwise it grows.
        var declared = gzip ? null : request.ContentLength;
        _buffer = ArrayPool<byte>.Shared.Rent(declared is { } n and <= Limit ? (int)n + 1 : FirstGuess);
        try
        {
            // Read at most one byte past the limit: that byte is enough to know the body is too large.
            while (Length <= Limit)
            {
                if (Length == _buffer.Length) { Grow(); }
                var read = await body.ReadAsync(_buffer.AsMemory(Length, Math.Min(_buffer.Length, Limit + 1) - Length), cancellationToken);
                if (read == 0) { return Outcome.Ok; }
                Length += read;
            }

            return Outcome.TooLarge;
        }
        catch (InvalidDataException)
        {
            return Outcome.BadEncoding;
        }
        finally
        {
            if (gzip) { await body.DisposeAsync(); }
        }
    }

    private void Grow()
    {
        var larger = ArrayPool<byte>.Shared.Rent(Math.Min(_buffer.Length * 2, Limit + 1));
        _buffer.AsSpan(0, Length).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }

    public bool TryParse(out JsonDocument? document, out string? error)
    {
        try
        {
            document = JsonDocument.Parse(Bytes, new JsonDocumentOptions { MaxDepth = 64 });
            error = null;
            return true;
        }
        catch (JsonException e)
        {
            document = null;
            error = $"the body is not valid JSON: {e.Message}";
            return false;
        }
    }

    public void Dispose()
    {
        if (_buffer.Length > 0) { ArrayPool<byte>.Shared.Return(_buffer); }
        _buffer = [];
    }
}
