using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsvHelper;
using Tessera.Core.Collection;
using Tessera.Core.Identity;
using Tessera.Storage;

namespace Tessera.Cli.Import;

/// <summary>
/// Loads CRM-style records (CSV) into profiles. Each row becomes an <c>identify</c> message in the event log, from
/// the named source: mapped identifier types (email, phone, user_id, loyalty_id, ...) become identifiers, anything
/// else a trait. So a row joins the identity graph exactly as a live message would, and a rebuild replays it.
/// A row without a usable identifier is refused with the reason; re-importing the same row stores it once.
/// </summary>
internal sealed class ProfileImporter(ITesseraStore store, string sourceId, string sourceName, TextWriter rejectedOut, int batchSize = 2000)
{
    private readonly ImportSink _sink = new(store, rejectedOut, batchSize);

    public long Imported => _sink.Imported;
    public long Rejected => _sink.Rejected;
    public long Duplicates => _sink.Duplicates;

    public async Task ImportCsvAsync(Stream input, IReadOnlyDictionary<string, string> map, Action<long> progress, CancellationToken cancellationToken)
    {
        var rules = store.Engine.IdentityRules;
        using var csv = CsvReader.Create(input, new CsvReaderOptions { HasHeader = true, TrimWhitespace = true, SkipEmptyLines = true }, leaveOpen: true);
        await csv.ReadHeaderAsync(cancellationToken);
        var header = csv.Headers;
        foreach (var column in map.Values.Where(c => !header.Contains(c)))
        {
            throw new ArgumentException($"--map: the file has no column '{column}' (its columns: {string.Join(", ", header)})");
        }

        if (!map.Keys.Any(k => rules.Find(k) is not null))
        {
            throw new ArgumentException($"--map: map at least one identifier type ({string.Join(", ", rules.Types.Select(t => t.Type))}) to a column, e.g. email=Email");
        }

        var receivedAt = DateTimeOffset.UtcNow;
        var row = 1L;
        while (await csv.ReadAsync(cancellationToken))
        {
            row++;
            var values = map.ToDictionary(m => m.Key, m => csv.GetStringOrNull(m.Value), StringComparer.Ordinal);
            var message = Message(values, rules, row);
            var text = message.ToJsonString();
            using var document = JsonDocument.Parse(text);
            var (identifiers, refused) = store.Engine.Preview(document.RootElement);
            if (identifiers.Count == 0)
            {
                var why = refused.Count > 0
                    ? string.Join("; ", refused.Select(r => $"{map.GetValueOrDefault(r.Type, r.Type)}: '{r.RawValue}' {r.Reason}"))
                    : "no identifier column has a value";
                await _sink.RejectAsync(row, refused.Count > 0 ? map.GetValueOrDefault(refused[0].Type, refused[0].Type) : string.Join(",", map.Where(m => rules.Find(m.Key) is not null).Select(m => m.Value)), why, text);
                continue;
            }

            if (!MessageValidator.TryValidate(document.RootElement, MessageType.Identify, sourceId, receivedAt, null, out var collected, out var rejection, externalIdsSuffice: true))
            {
                await _sink.RejectAsync(row, map.GetValueOrDefault(rejection!.Field.Split('.')[^1], rejection.Field), rejection.Reason, text);
                continue;
            }

            await _sink.AddAsync(collected!, cancellationToken);
            if (row % 1000 == 0) { progress(input.Position); }
        }

        await _sink.FlushAsync(cancellationToken);
        progress(input.Position);
    }

    private JsonObject Message(Dictionary<string, string?> values, IdentityRules rules, long row)
    {
        var traits = new JsonObject();
        var externalIds = new JsonArray();
        var message = new JsonObject { ["type"] = "identify" };
        foreach (var (key, value) in values)
        {
            if (string.IsNullOrEmpty(value)) { continue; }
            if (key == "timestamp") { message["timestamp"] = value; continue; }
            if (key == "user_id") { message["userId"] = value; continue; }
            if (rules.Find(key) is not null)
            {
                externalIds.Add(new JsonObject { ["id"] = value, ["type"] = key, ["collection"] = "users", ["encoding"] = "none" });
                traits[key] = value;
                continue;
            }

            traits[key.StartsWith("traits.", StringComparison.Ordinal) ? key["traits.".Length..] : key] = value;
        }

        message["traits"] = traits;
        message["context"] = new JsonObject { ["externalIds"] = externalIds, ["source"] = new JsonObject { ["import"] = sourceName, ["row"] = row } };
        // The same row imported again is the same message: dedup keeps it once.
        var content = string.Join("\u001f", values.OrderBy(v => v.Key, StringComparer.Ordinal).Select(v => $"{v.Key}={v.Value}"));
        message["messageId"] = $"import-{sourceName}-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(content)))[..32]}";
        return message;
    }

}
