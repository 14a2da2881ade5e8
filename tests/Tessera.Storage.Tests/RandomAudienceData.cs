using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Core.Audiences;
using Tessera.Core.Collection;
using Tessera.Core.Conditions;
using Tessera.Core.Profiles;

namespace Tessera.Storage.Tests;

/// <summary>
/// Random people, messages and audience definitions from one seed, for the agreement of the SQL and in-memory
/// evaluations: identifies with traits of every JSON kind (some missing, some null), anonymous visitors who later
/// sign in (merges through a shared anonymous id and through alias), emails and phones, track events with numbers,
/// numeric strings, dates and nested context over 120 days before <see cref="Now"/> (some at equal times, a few after
/// it), page events that share a track event's name (which event conditions must not count).
/// </summary>
internal sealed class RandomAudienceData(int seed)
{
    public static readonly DateTimeOffset Now = new(2026, 10, 1, 12, 0, 0, TimeSpan.Zero);

    public static readonly string[] EventNames = ["Order Completed", "Page Viewed", "Email Opened", "Signed Up"];

    private static readonly string[] Plans = ["pro", "free", "basic", "Pro", "pro "];
    private static readonly string[] Sources = ["google", "newsletter", "news", "bing", "Google"];
    private static readonly string[] Products = ["p-1", "p-2", "p-3", "p-4"];

    private readonly Random _random = new(seed);

    /// <summary>The computed traits the data set defines; most_frequent and first/last of a property are left out (see the focused tests).</summary>
    public static readonly IReadOnlyList<ComputedTraitDefinition> Computed =
    [
        new("orders", ComputedFunction.Count, "Order Completed"),
        new("spent", ComputedFunction.Sum, "Order Completed", "revenue"),
        new("spent_30d", ComputedFunction.Sum, "Order Completed", "revenue", Within: "30d"),
        new("avg_order_90d", ComputedFunction.Average, "Order Completed", "revenue", Within: "90d"),
        new("smallest_order", ComputedFunction.Min, "Order Completed", "revenue"),
        new("largest_order", ComputedFunction.Max, "Order Completed", "revenue"),
        new("first_order_at", ComputedFunction.First, "Order Completed"),
        new("last_visit_at", ComputedFunction.Last, "Page Viewed", Within: "60d"),
        new("products", ComputedFunction.DistinctCount, "Order Completed", "product_id"),
        new("big_orders_90d", ComputedFunction.Count, "Order Completed", Where: [new PropertyFilter("revenue", "gt", Json(50))], Within: "90d"),
    ];

    public static readonly string[] ComputedNames = [.. Computed.Select(c => c.Name), "not_defined"];

    /// <summary>The messages in arrival order.</summary>
    public List<CollectedEvent> Messages(int people)
    {
        var messages = new List<CollectedEvent>();
        var last = Now.AddDays(-120);
        DateTimeOffset Time()
        {
            // Some messages share the previous one's time exactly; a few land after now.
            if (_random.Next(10) == 0) { return last; }
            last = _random.Next(40) == 0 ? Now.AddMinutes(_random.Next(1, 3000)) : Now.AddMinutes(-_random.Next(0, 120 * 24 * 60)).AddMilliseconds(_random.Next(1000));
            return last;
        }

        var n = 0;
        void Add(MessageType type, string? name, string? userId, string? anonymousId, string? previousId, JsonObject body, DateTimeOffset? at = null)
        {
            var time = at ?? Time();
            var id = $"m-{n++}";
            body["type"] = type.Name();
            body["messageId"] = id;
            if (userId is not null) { body["userId"] = userId; }
            if (anonymousId is not null) { body["anonymousId"] = anonymousId; }
            if (previousId is not null) { body["previousId"] = previousId; }
            if (type == MessageType.Track) { body["event"] = name; }
            if (type == MessageType.Page) { body["name"] = name; }
            messages.Add(new CollectedEvent(id, "src_a", type, name, userId, anonymousId, null, previousId, time, time, null, time, body.ToJsonString()));
        }

        for (var p = 0; p < people; p++)
        {
            var anonymous = $"a-{p}";
            var user = _random.Next(10) < 7 ? $"u-{p}" : null;
            // A visitor on someone else's device: their anonymous id meets another person's user id (a merge).
            var shared = p > 0 && _random.Next(8) == 0 ? $"a-{_random.Next(p)}" : null;
            for (var i = _random.Next(0, 12); i > 0; i--) { Add(MessageType.Track, Pick(EventNames), null, anonymous, null, new JsonObject { ["properties"] = Properties() }); }
            if (_random.Next(6) == 0) { Add(MessageType.Page, "Page Viewed", null, anonymous, null, new JsonObject { ["properties"] = new JsonObject { ["path"] = "/" } }); }
            if (user is null) { continue; }
            if (_random.Next(3) == 0) { Add(MessageType.Alias, null, user, null, anonymous, []); }
            else { Add(MessageType.Identify, null, user, anonymous, null, new JsonObject { ["traits"] = Traits(p) }); }
            if (shared is not null) { Add(MessageType.Identify, null, user, shared, null, new JsonObject { ["traits"] = Traits(p) }); }
            for (var i = _random.Next(0, 15); i > 0; i--)
            {
                var body = new JsonObject { ["properties"] = Properties() };
                if (_random.Next(5) == 0) { body["context"] = new JsonObject { ["campaign"] = new JsonObject { ["source"] = Pick(Sources) } }; }
                Add(MessageType.Track, Pick(EventNames), user, _random.Next(2) == 0 ? anonymous : null, null, body);
            }

            if (_random.Next(3) == 0) { Add(MessageType.Identify, null, user, null, null, new JsonObject { ["traits"] = Traits(p) }); }
        }

        return messages;
    }

    private JsonObject Traits(int person)
    {
        var traits = new JsonObject();
        if (_random.Next(4) > 0) { traits["plan"] = Pick(Plans); }
        if (_random.Next(3) > 0) { traits["age"] = _random.Next(3) == 0 ? JsonValue.Create(_random.Next(18, 70).ToString(CultureInfo.InvariantCulture)) : JsonValue.Create(_random.Next(18, 70)); }
        if (_random.Next(2) == 0) { traits["signup"] = Now.AddDays(-_random.Next(400)).ToString(_random.Next(3) == 0 ? "yyyy-MM-dd" : "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture); }
        if (_random.Next(2) == 0) { traits["vip"] = _random.Next(2) == 0; }
        if (_random.Next(3) == 0) { traits["score"] = Money(); }
        if (_random.Next(5) == 0) { traits["nickname"] = _random.Next(2) == 0 ? $"O'Brien \"{person}\"; --" : null; }
        if (_random.Next(4) == 0) { traits["address"] = new JsonObject { ["city"] = "Paris" }; }
        if (_random.Next(3) == 0) { traits["email"] = $"person{person}@example.com"; }
        if (_random.Next(6) == 0) { traits["phone"] = $"+1415555{person:0000}"; }
        return traits;
    }

    private JsonObject Properties()
    {
        var properties = new JsonObject();
        if (_random.Next(4) > 0) { properties["revenue"] = _random.Next(8) == 0 ? JsonValue.Create(Money().ToString(CultureInfo.InvariantCulture)) : JsonValue.Create(Money()); }
        if (_random.Next(2) == 0) { properties["product_id"] = Pick(Products); }
        if (_random.Next(6) == 0) { properties["shipped_at"] = Now.AddDays(-_random.Next(100)).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture); }
        if (_random.Next(8) == 0) { properties["qty"] = _random.Next(2) == 0 ? JsonValue.Create(_random.Next(1, 5)) : JsonValue.Create(_random.Next(1, 5).ToString(CultureInfo.InvariantCulture)); }
        if (_random.Next(10) == 0) { properties["revenue"] = null; }
        return properties;
    }

    private decimal Money() => _random.Next(4) switch
    {
        0 => _random.Next(5, 150),
        1 => _random.Next(10, 3000) / 10m,
        _ => _random.Next(100, 15000) / 100m,
    };

    // ---- definitions ----

    /// <summary>A random definition; <paramref name="depth"/> bounds its nesting.</summary>
    public AudienceCondition Definition(int depth = 3)
    {
        var kind = _random.Next(depth > 0 ? 11 : 7);
        return kind switch
        {
            0 or 1 => Trait(),
            2 => Identifier(),
            3 => ComputedCondition(),
            4 or 5 => Event(),
            6 => _random.Next(4) == 0 ? new SegmentReference(Pick(["s1", "s2", "s3", "missing"])) : Sequence(),
            7 => new AllOf([.. Enumerable.Range(0, _random.Next(1, 4)).Select(_ => Definition(depth - 1))]),
            8 => new AnyOf([.. Enumerable.Range(0, _random.Next(1, 4)).Select(_ => Definition(depth - 1))]),
            9 => new NotCondition(Definition(depth - 1)),
            _ => Sequence(),
        };
    }

    private TraitCondition Trait()
    {
        var trait = Pick(["plan", "age", "signup", "vip", "score", "nickname", "address", "email", "never_set"]);
        var op = Pick(PropertyFilter.Operators.ToArray());
        return new TraitCondition(trait, op, Value(op, trait));
    }

    private IdentifierCondition Identifier()
    {
        var type = Pick(["email", "phone", "user_id", "anonymous_id"]);
        var op = Pick(PropertyFilter.Operators.ToArray());
        JsonElement? value = op switch
        {
            "exists" or "not_exists" => null,
            "in" or "not_in" => Json(new[] { IdentifierValue(type), IdentifierValue(type) }),
            "contains" => Json(Pick(["@example", "-1", "555", "a-"])),
            "starts_with" => Json(Pick(["u-1", "a-2", "person1", "+1415"])),
            "ends_with" => Json(Pick(["7", "example.com", "0"])),
            "gt" or "gte" or "lt" or "lte" => _random.Next(3) == 0 ? Json(5) : Json(IdentifierValue(type)),
            _ => Json(IdentifierValue(type)),
        };
        return new IdentifierCondition(type, op, value);
    }

    private string IdentifierValue(string type) => type switch
    {
        "email" => $"person{_random.Next(40)}@example.com",
        "phone" => $"+1415555{_random.Next(40):0000}",
        "user_id" => $"u-{_random.Next(40)}",
        _ => $"a-{_random.Next(40)}",
    };

    private ComputedCondition ComputedCondition()
    {
        var name = Pick(ComputedNames);
        if (name is "first_order_at" or "last_visit_at")
        {
            var op = Pick(["gt", "lt", "gte", "exists", "not_exists", "starts_with"]);
            return new ComputedCondition(name, op, op switch
            {
                "exists" or "not_exists" => null,
                "starts_with" => Json("2026-0"),
                _ => Json(Now.AddDays(-_random.Next(120)).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)),
            });
        }

        var comparison = Pick(["eq", "neq", "gt", "gte", "lt", "lte", "exists", "not_exists", "in"]);
        return new ComputedCondition(name, comparison, comparison switch
        {
            "exists" or "not_exists" => null,
            "in" => Json(new[] { 0, 1, 2 }),
            _ => Json(name is "orders" or "products" or "big_orders_90d" ? _random.Next(0, 6) : Money()),
        });
    }

    private EventCondition Event()
    {
        var name = _random.Next(12) == 0 ? "Never Happened" : Pick(EventNames);
        var where = Filters();
        var window = _random.Next(4) switch
        {
            0 => TimeWindow.AllTime,
            1 => new TimeWindow(TimeSpan.FromDays(Pick([1, 7, 30, 90])), null, null),
            2 => new TimeWindow(null, Now.AddDays(-_random.Next(60, 130)), _random.Next(3) == 0 ? null : Now.AddDays(-_random.Next(0, 60))),
            _ => new TimeWindow(null, null, Now.AddDays(-_random.Next(0, 100))),
        };
        return _random.Next(3) switch
        {
            0 => new EventCondition(name, where, window),
            1 => new EventCondition(name, where, window, Count: new NumberComparison(Pick(NumberComparison.Operators.ToArray()), _random.Next(0, 5))),
            _ => new EventCondition(name, where, window, SumProperty: "revenue", Sum: new NumberComparison(Pick(NumberComparison.Operators.ToArray()), _random.Next(2) == 0 ? 0 : Money())),
        };
    }

    private SequenceCondition Sequence()
    {
        var steps = Enumerable.Range(0, _random.Next(1, 4))
            .Select(_ => new SequenceStep(Pick(EventNames), _random.Next(3) == 0 ? Filters() : [], First: _random.Next(4) == 0))
            .ToList();
        return new SequenceCondition(steps, Pick([TimeSpan.FromMinutes(15), TimeSpan.FromHours(6), TimeSpan.FromDays(3), TimeSpan.FromDays(30), TimeSpan.Zero]));
    }

    private List<PropertyFilter> Filters()
    {
        var filters = new List<PropertyFilter>();
        for (var i = _random.Next(0, 3); i > 0; i--)
        {
            var property = Pick(["revenue", "product_id", "context.campaign.source", "shipped_at", "qty", "missing"]);
            var op = Pick(PropertyFilter.Operators.ToArray());
            filters.Add(new PropertyFilter(property, op, Value(op, property)));
        }

        return filters;
    }

    /// <summary>A literal that suits the op (as validation demands) and, usually, the field.</summary>
    private JsonElement? Value(string op, string field)
    {
        if (op is "exists" or "not_exists") { return null; }
        if (op is "in" or "not_in") { return Json(new JsonArray(Literal(field, op), Literal(field, op), Literal(field, op))); }
        return Json(Literal(field, op));
    }

    private JsonNode? Literal(string field, string op)
    {
        var ordered = op is "gt" or "gte" or "lt" or "lte";
        var textual = op is "contains" or "starts_with" or "ends_with";
        if (_random.Next(6) == 0 && !textual) { return ordered ? JsonValue.Create("m") : JsonValue.Create(true); }
        return field switch
        {
            "plan" => textual ? JsonValue.Create(Pick(["pr", "o", "Pro", "ee", "ro "])) : JsonValue.Create(Pick(Plans)),
            "age" or "qty" => _random.Next(4) == 0 ? JsonValue.Create(_random.Next(1, 70).ToString(CultureInfo.InvariantCulture)) : JsonValue.Create(_random.Next(1, 70)),
            "signup" or "shipped_at" => JsonValue.Create(Now.AddDays(-_random.Next(400)).ToString(_random.Next(4) == 0 ? "yyyy-MM-dd" : "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)),
            "vip" => ordered || textual ? JsonValue.Create("t") : JsonValue.Create(_random.Next(2) == 0),
            "score" or "revenue" => textual ? JsonValue.Create(Pick(["5", ".5", "1"])) : _random.Next(5) == 0 ? JsonValue.Create(Money().ToString(CultureInfo.InvariantCulture)) : JsonValue.Create(Money()),
            "nickname" => JsonValue.Create(Pick(["O'Brien", "\"; --", "O'Brien \"3\"; --"])),
            "address" => ordered || textual ? JsonValue.Create("Paris") : JsonNode.Parse("""{"city":"Paris"}"""),
            "product_id" => JsonValue.Create(Pick(Products.Append("p").ToArray())),
            "context.campaign.source" => JsonValue.Create(Pick(Sources.Append("goo").ToArray())),
            "email" => JsonValue.Create($"person{_random.Next(40)}@example.com"),
            _ => JsonValue.Create(Pick(["x", "p-1", "pro"])),
        };
    }

    /// <summary>
    /// Segments the definitions may refer to. s3 refers to itself through a not: inlined down to the depth limit (where
    /// a reference is false), as in memory; kept to a trait so the 32 copies stay small.
    /// </summary>
    public Dictionary<string, AudienceCondition> Segments() => new()
    {
        ["s1"] = Definition(1),
        ["s2"] = new AnyOf([Definition(1), new SegmentReference("s1")]),
        ["s3"] = new AnyOf([Trait(), new NotCondition(new SegmentReference("s3"))]),
    };

    private T Pick<T>(T[] items) => items[_random.Next(items.Length)];

    private static JsonElement Json<T>(T value) => JsonSerializer.SerializeToElement(value);
}
