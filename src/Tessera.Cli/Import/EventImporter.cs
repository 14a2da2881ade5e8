using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsvHelper;
using Tessera.Core.Collection;
using Tessera.Storage.Events;

namespace Tessera.Cli.Import;

/// <summary>
/// Loads a history backfill: JSONL of Segment messages, or CSV rows mapped to message fields. Every row goes
/// through the same validation as the HTTP API and the same dedup in the store; refused rows are written to
/// the rejected file with their reason.
/// </summary>
internal sealed class EventImporter(IEventStore store, string sourceId, TextWriter rejectedOut, int batchSize = 5000)
{
    private readonly ImportSink _sink = new(store, rejectedOut, batchSize);

    public long Imported => _sink.Imported;
    public long Rejected => _sink.Rejected;
    public long Duplicates => _sink.Duplicates;

    /// <summary>JSON Lines: one message per line; blank lines are skipped.</summary>
    public async Task ImportJsonLinesAsync(Stream input, Action<long> progress, CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(input, Encoding.UTF8);
        var lineNumber = 0L;
        var receivedAt = DateTimeOffset.UtcNow;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) { continue; }
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(line);
            }
            catch (JsonException e)
            {
                await _sink.RejectAsync(lineNumber, "", $"not valid JSON: {e.Message}", line);
                continue;
            }

            using (document)
            {
                await AddAsync(lineNumber, document.RootElement, line, receivedAt, cancellationToken);
            }

            if (lineNumber % 1000 == 0) { progress(input.Position); }
        }

        await _sink.FlushAsync(cancellationToken);
        progress(input.Position);
    }

    /// <summary>CSV with a header row; <paramref name="map"/> maps message paths (<c>properties.revenue</c>) to column names.</summary>
    public async Task ImportCsvAsync(Stream input, IReadOnlyDictionary<string, string> map, string? defaultType, Action<long> progress, CancellationToken cancellationToken)
    {
        using var csv = CsvReader.Create(input, new CsvReaderOptions { HasHeader = true, TrimWhitespace = true, SkipEmptyLines = true }, leaveOpen: true);
        await csv.ReadHeaderAsync(cancellationToken);
        var header = csv.Headers;
        foreach (var column in map.Values.Where(c => !header.Contains(c)))
        {
            throw new ArgumentException($"--map: the file has no column '{column}' (its columns: {string.Join(", ", header)})");
        }

        var receivedAt = DateTimeOffset.UtcNow;
        var row = 1L;
        while (await csv.ReadAsync(cancellationToken))
        {
            row++;
            var message = new JsonObject();
            if (defaultType is not null) { message["type"] = defaultType; }
            foreach (var (path, column) in map)
            {
                var value = csv.GetStringOrNull(column);
                if (string.IsNullOrEmpty(value)) { continue; }
                Set(message, path, TypedValue(path, value));
            }

            var text = message.ToJsonString();
            using var document = JsonDocument.Parse(text);
            await AddAsync(row, document.RootElement, text, receivedAt, cancellationToken);
            if (row % 1000 == 0) { progress(input.Position); }
        }

        await _sink.FlushAsync(cancellationToken);
        progress(input.Position);
    }

    private async Task AddAsync(long line, JsonElement message, string text, DateTimeOffset receivedAt, CancellationToken cancellationToken)
    {
        if (MessageValidator.TryValidate(message, null, sourceId, receivedAt, null, out var collected, out var rejection))
        {
            await _sink.AddAsync(collected!, cancellationToken);
        }
        else
        {
            await _sink.RejectAsync(line, rejection!.Field, rejection.Reason, text);
        }
    }


    // Ids and names stay text; values under properties/traits/context that look like numbers or booleans become them.
    private static JsonValue TypedValue(string path, string value)
    {
        if (!path.Contains('.', StringComparison.Ordinal)) { return JsonValue.Create(value); }
        if (decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)) { return JsonValue.Create(number); }
        if (bool.TryParse(value, out var flag)) { return JsonValue.Create(flag); }
        return JsonValue.Create(value);
    }

    private static void Set(JsonObject target, string path, JsonNode? value)
    {
        var parts = path.Split('.');
        var node = target;
        foreach (var part in parts[..^1])
        {
            if (node[part] is not JsonObject child)
            {
                child = [];
                node[part] = child;
            }

            node = child;
        }

        node[parts[^1]] = value;
    }
}
