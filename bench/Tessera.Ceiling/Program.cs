using System.Buffers;
using System.Text.Json;

// What the machine can do with Tessera's HTTP load and none of Tessera's work: Kestrel with the same settings as
// Tessera's host (slim builder, no server header), the body read into a pooled buffer and parsed with JsonDocument,
// then thrown away. Tessera's figures are read against this one.
var builder = WebApplication.CreateSlimBuilder(args);
builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
var app = builder.Build();
var success = """{"success":true}"""u8.ToArray();

app.MapGet("/health", () => TypedResults.Ok());
app.MapPost("/v1/batch", async (HttpContext context) =>
{
    var buffer = ArrayPool<byte>.Shared.Rent(500 * 1024 + 1);
    try
    {
        var length = 0;
        int read;
        while (length < buffer.Length && (read = await context.Request.Body.ReadAsync(buffer.AsMemory(length), context.RequestAborted)) > 0) { length += read; }
        using var document = JsonDocument.Parse(buffer.AsMemory(0, length));
        // Touch the batch, as Tessera does, so the parse cannot be skipped.
        _ = document.RootElement.GetProperty("batch"u8).GetArrayLength();
        return TypedResults.Bytes(success, "application/json");
    }
    finally
    {
        ArrayPool<byte>.Shared.Return(buffer);
    }
});

app.Run();
