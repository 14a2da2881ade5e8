using System.Globalization;
using System.Text.Json;

namespace Tessera.Core.Demo;

/// <summary>
/// A realistic small shop, generated deterministically: anonymous visitors browsing, some of them signing up
/// (identify with email and phone), ordering, opening emails, a few in-store purchases known only by phone.
/// The output is plain Segment messages, so it goes through the same validation as anything collected.
/// </summary>
public static class DemoData
{
    private static readonly string[] FirstNames = ["Ann", "Bao", "Carla", "Dmitri", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jonas", "Kavya", "Liam", "Mei", "Noah", "Olga", "Pedro"];
    private static readonly string[] LastNames = ["Smith", "Nguyen", "Garcia", "Ivanov", "Yilmaz", "Okafor", "Lee", "Tanaka", "Costa", "Berg", "Rao", "Walsh", "Chen", "Miller"];
    private static readonly (string Id, string Name, decimal Price)[] Products =
    [
        ("p-1", "Trail Runner Shoes", 89.90m), ("p-2", "Merino Socks", 14.50m), ("p-3", "Rain Jacket", 149.00m),
        ("p-42", "Espresso Machine", 329.00m), ("p-7", "Water Bottle", 19.90m), ("p-9", "Yoga Mat", 39.00m),
    ];

    private static readonly string[] Pages = ["/", "/shoes", "/jackets", "/kitchen", "/sale", "/about"];

    /// <summary>Messages (JSON text, newest last) for <paramref name="people"/> people over the days before <paramref name="now"/>.</summary>
    public static IEnumerable<string> Messages(DateTimeOffset now, int people = 300, int seed = 42)
    {
        var random = new Random(seed);
        for (var p = 0; p < people; p++)
        {
            var anonymousId = $"anon-{p:D5}-{random.Next(100000, 999999)}";
            var first = FirstNames[random.Next(FirstNames.Length)];
            var last = LastNames[random.Next(LastNames.Length)];
            var userId = $"user-{p:D5}";
            var email = $"{first}.{last}{p}@example.com".ToLowerInvariant();
            var phone = $"+1415555{p % 10000:D4}";
            var time = now.AddDays(-random.Next(1, 60)).AddMinutes(-random.Next(0, 1440));
            var visits = random.Next(1, 6);
            var signedUp = random.NextDouble() < 0.6;
            for (var v = 0; v < visits; v++)
            {
                foreach (var page in Enumerable.Range(0, random.Next(1, 5)).Select(_ => Pages[random.Next(Pages.Length)]))
                {
                    time = time.AddSeconds(random.Next(5, 180));
                    yield return Message(new { type = "page", anonymousId, userId = signedUp && v > 0 ? userId : null, name = page.TrimStart('/') is { Length: > 0 } n ? n : "home", properties = new { path = page, url = "https://shop.example.com" + page }, timestamp = time });
                }

                var product = Products[random.Next(Products.Length)];
                time = time.AddSeconds(random.Next(5, 120));
                yield return Message(new { type = "track", anonymousId, @event = "Product Viewed", properties = new { product_id = product.Id, name = product.Name, price = product.Price }, timestamp = time });
                if (signedUp && v == 0)
                {
                    time = time.AddSeconds(random.Next(10, 300));
                    yield return Message(new { type = "identify", anonymousId, userId, traits = new { email, phone, firstName = first, lastName = last, plan = random.NextDouble() < 0.2 ? "pro" : "free" }, timestamp = time });
                }

                if (signedUp && random.NextDouble() < 0.5)
                {
                    time = time.AddSeconds(random.Next(30, 900));
                    var quantity = random.Next(1, 3);
                    yield return Message(new { type = "track", userId, anonymousId, @event = "Order Completed", properties = new { order_id = $"o-{p}-{v}", revenue = product.Price * quantity, currency = "USD", products = new[] { new { product_id = product.Id, quantity } } }, timestamp = time });
                }

                if (signedUp && random.NextDouble() < 0.3)
                {
                    yield return Message(new { type = "track", userId, @event = "Email Opened", properties = new { campaign = "weekly-" + random.Next(1, 9) }, timestamp = time.AddHours(random.Next(1, 48)) });
                }

                time = time.AddDays(random.Next(1, 7));
                if (time > now) { break; }
            }

            if (random.NextDouble() < 0.1)
            {
                // Bought in a store: the point-of-sale system knows only a phone number.
                var product = Products[random.Next(Products.Length)];
                yield return Message(new { type = "track", anonymousId = "pos-" + phone, @event = "Order Completed", context = new { traits = new { phone } }, properties = new { order_id = $"pos-{p}", revenue = product.Price, channel = "store" }, timestamp = now.AddDays(-random.Next(1, 30)) });
            }
        }
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    private static string Message(object message) => JsonSerializer.Serialize(message, Json);

    /// <summary>
    /// The email of the first person in the demo data who identifies (with the same <paramref name="people"/> and
    /// <paramref name="seed"/>): what the banner of <c>serve --demo</c> offers to look up, so the lookup finds someone.
    /// </summary>
    public static string SampleEmail(int people = 300, int seed = 42) =>
        Messages(DateTimeOffset.UnixEpoch.AddYears(40), people, seed)
            .Select(m => System.Text.Json.Nodes.JsonNode.Parse(m)!)
            .First(m => (string?)m["type"] == "identify")["traits"]!["email"]!.GetValue<string>();

    /// <summary>For callers that want the demo's time window in words.</summary>
    public static string Describe(int people) => string.Create(CultureInfo.InvariantCulture, $"{people} people over the last 60 days");
}
