using System.Buffers;
using System.Buffers.Text;
using System.Text.Json;

namespace Tessera.LoadGen;

/// <summary>
/// Realistic Segment messages, written once into batch templates; each send copies a template and stamps fresh
/// messageIds into fixed-width slots, so the generator spends its CPU on sending, not on JSON.
/// </summary>
internal sealed class MessageFactory
{
    private const int CounterDigits = 12;
    private readonly BatchTemplate[] _templates;
    private long _nextId;

    public MessageFactory(int batchSize, int templates, int seed)
    {
        var random = new Random(seed);
        RunPrefix = $"lg-{random.Next():x8}-";
        _templates = new BatchTemplate[templates];
        for (var i = 0; i < templates; i++) { _templates[i] = WriteTemplate(random, batchSize); }
        AverageMessageBytes = _templates.Average(t => (double)t.Bytes.Length) / batchSize;
    }

    public string RunPrefix { get; }

    public double AverageMessageBytes { get; }

    public int MaxBatchBytes => _templates.Max(t => t.Bytes.Length);

    /// <summary>Writes batch number <paramref name="sequence"/> into <paramref name="buffer"/>, with messageIds never used before.</summary>
    public int Write(long sequence, byte[] buffer)
    {
        var template = _templates[sequence % _templates.Length];
        template.Bytes.CopyTo(buffer, 0);
        var first = Interlocked.Add(ref _nextId, template.IdOffsets.Length) - template.IdOffsets.Length;
        for (var i = 0; i < template.IdOffsets.Length; i++)
        {
            var slot = buffer.AsSpan(template.IdOffsets[i], CounterDigits);
            Utf8Formatter.TryFormat(first + i, slot, out _, new StandardFormat('D', CounterDigits));
        }

        return template.Bytes.Length;
    }

    private sealed record BatchTemplate(byte[] Bytes, int[] IdOffsets);

    private BatchTemplate WriteTemplate(Random random, int batchSize)
    {
        var buffer = new ArrayBufferWriter<byte>(batchSize * 800);
        var placeholder = RunPrefix + new string('0', CounterDigits);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("batch");
            for (var i = 0; i < batchSize; i++)
            {
                var roll = random.Next(100);
                if (roll < 40) { WriteProductViewed(w, random, placeholder); }
                else if (roll < 50) { WriteOrderCompleted(w, random, placeholder); }
                else if (roll < 85) { WritePage(w, random, placeholder); }
                else { WriteIdentify(w, random, placeholder); }
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        var bytes = buffer.WrittenSpan.ToArray();
        var marker = System.Text.Encoding.UTF8.GetBytes($"\"{placeholder}\"");
        var offsets = new List<int>(batchSize);
        var at = 0;
        while (true)
        {
            var found = bytes.AsSpan(at).IndexOf(marker);
            if (found < 0) { break; }
            offsets.Add(at + found + 1 + RunPrefix.Length);
            at += found + marker.Length;
        }

        if (offsets.Count != batchSize) { throw new InvalidOperationException($"expected {batchSize} messageId slots, found {offsets.Count}"); }
        return new BatchTemplate(bytes, [.. offsets]);
    }

    private static readonly string[] Categories = ["Apparel", "Footwear", "Accessories", "Home", "Outdoor", "Beauty"];
    private static readonly string[] Colours = ["black", "white", "navy", "olive", "sand", "red"];
    private static readonly string[] Paths = ["/", "/collections/new", "/collections/sale", "/products/linen-shirt", "/cart", "/account", "/blog/summer-guide", "/search"];
    private static readonly string[] Referrers = ["https://www.google.com/", "https://www.instagram.com/", "https://news.example.org/", "", "https://t.co/x1y2z3"];
    private static readonly string[] Cities = ["Lisbon", "Berlin", "Austin", "Osaka", "Lyon", "Toronto"];
    private static readonly string[] Countries = ["PT", "DE", "US", "JP", "FR", "CA"];
    private static readonly string[] Plans = ["free", "plus", "pro"];
    private static readonly string[] UserAgents =
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
    ];

    private static void WriteCommon(Utf8JsonWriter w, Random random, string type, string messageId, bool known)
    {
        w.WriteString("type", type);
        w.WriteString("messageId", messageId);
        var user = random.Next(1, 200_000);
        if (known) { w.WriteString("userId", $"user_{user}"); }
        w.WriteString("anonymousId", new Guid(random.Next(), (short)user, 0x4a1c, 0x8b, 0x2f, 0, 0, 0, 0, 0, (byte)random.Next(256)).ToString());
        w.WriteString("timestamp", DateTimeOffset.UtcNow.AddSeconds(-random.Next(1, 30)).ToString("yyyy-MM-ddTHH:mm:ss.fffZ"));
    }

    private static void WriteContext(Utf8JsonWriter w, Random random, string? path)
    {
        w.WriteStartObject("context");
        w.WriteStartObject("library");
        w.WriteString("name", "analytics.js");
        w.WriteString("version", "npm:next-1.74.0");
        w.WriteEndObject();
        w.WriteString("ip", $"203.0.{random.Next(0, 256)}.{random.Next(1, 255)}");
        w.WriteString("locale", "en-US");
        w.WriteString("userAgent", UserAgents[random.Next(UserAgents.Length)]);
        if (path is not null)
        {
            w.WriteStartObject("page");
            w.WriteString("path", path);
            w.WriteString("referrer", Referrers[random.Next(Referrers.Length)]);
            w.WriteString("search", random.Next(4) == 0 ? "?utm_source=newsletter&utm_medium=email" : "");
            w.WriteString("title", "Tessera Outfitters");
            w.WriteString("url", "https://shop.example.com" + path);
            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    private static void WriteProductViewed(Utf8JsonWriter w, Random random, string messageId)
    {
        w.WriteStartObject();
        WriteCommon(w, random, "track", messageId, random.Next(3) > 0);
        w.WriteString("event", "Product Viewed");
        var sku = random.Next(1000, 9999);
        w.WriteStartObject("properties");
        w.WriteString("product_id", $"prod_{sku}");
        w.WriteString("sku", $"TS-{sku}-{Colours[sku % Colours.Length].ToUpperInvariant()}");
        w.WriteString("category", Categories[sku % Categories.Length]);
        w.WriteString("name", $"Linen shirt {sku}");
        w.WriteString("brand", "Tessera Outfitters");
        w.WriteString("variant", Colours[sku % Colours.Length]);
        w.WriteNumber("price", Math.Round(9.99 + (sku % 120), 2));
        w.WriteString("currency", "EUR");
        w.WriteNumber("position", random.Next(1, 24));
        w.WriteString("url", $"https://shop.example.com/products/prod_{sku}");
        w.WriteEndObject();
        WriteContext(w, random, null);
        w.WriteEndObject();
    }

    private static void WriteOrderCompleted(Utf8JsonWriter w, Random random, string messageId)
    {
        w.WriteStartObject();
        WriteCommon(w, random, "track", messageId, known: true);
        w.WriteString("event", "Order Completed");
        w.WriteStartObject("properties");
        w.WriteString("order_id", $"ord_{random.Next(1_000_000, 9_999_999)}");
        var items = random.Next(1, 3);
        var total = 0.0;
        w.WriteStartArray("products");
        for (var i = 0; i < items; i++)
        {
            var sku = random.Next(1000, 9999);
            var price = Math.Round(9.99 + (sku % 120), 2);
            total += price;
            w.WriteStartObject();
            w.WriteString("product_id", $"prod_{sku}");
            w.WriteString("sku", $"TS-{sku}");
            w.WriteNumber("price", price);
            w.WriteNumber("quantity", 1);
            w.WriteString("category", Categories[sku % Categories.Length]);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteNumber("revenue", Math.Round(total, 2));
        w.WriteNumber("shipping", 4.90);
        w.WriteNumber("tax", Math.Round(total * 0.2, 2));
        w.WriteString("currency", "EUR");
        w.WriteEndObject();
        WriteContext(w, random, null);
        w.WriteEndObject();
    }

    private static void WritePage(Utf8JsonWriter w, Random random, string messageId)
    {
        w.WriteStartObject();
        WriteCommon(w, random, "page", messageId, random.Next(2) == 0);
        var path = Paths[random.Next(Paths.Length)];
        w.WriteString("name", path == "/" ? "Home" : path.TrimStart('/'));
        w.WriteStartObject("properties");
        w.WriteString("path", path);
        w.WriteString("url", "https://shop.example.com" + path);
        w.WriteEndObject();
        WriteContext(w, random, path);
        w.WriteEndObject();
    }

    private static void WriteIdentify(Utf8JsonWriter w, Random random, string messageId)
    {
        w.WriteStartObject();
        WriteCommon(w, random, "identify", messageId, known: true);
        var n = random.Next(1, 200_000);
        var city = random.Next(Cities.Length);
        w.WriteStartObject("traits");
        w.WriteString("email", $"customer{n}@example.com");
        w.WriteString("firstName", "Ana");
        w.WriteString("lastName", $"Silva{n % 97}");
        w.WriteString("phone", $"+3519{n:D8}");
        w.WriteString("plan", Plans[n % Plans.Length]);
        w.WriteString("createdAt", DateTimeOffset.UtcNow.AddDays(-(n % 900)).ToString("yyyy-MM-ddTHH:mm:ssZ"));
        w.WriteStartObject("address");
        w.WriteString("city", Cities[city]);
        w.WriteString("country", Countries[city]);
        w.WriteEndObject();
        w.WriteEndObject();
        WriteContext(w, random, null);
        w.WriteEndObject();
    }
}
