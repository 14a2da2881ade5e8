using System.Globalization;
using System.Text;
using System.Text.Json;
using Tessera.Core.Audiences;
using Tessera.Core.Conditions;

namespace Tessera.Audiences.Tests;

/// <summary>
/// Random valid definitions from a seed: trees of every node kind, names that need quoting (spaces, quotes,
/// keywords, other scripts, invisible characters), values of every JSON kind, every window and measure.
/// </summary>
public sealed class RandomDefinitions(int seed)
{
    private static readonly string[] Operators = [.. PropertyFilter.Operators];

    private static readonly string[] Names =
    [
        "plan", "first_name", "_x1", "context.campaign.source", "traits.a.b", "revenue", "Order Completed", "Page Viewed",
        "and", "OR", "Count", "to", "from", "within", "first", "null", "True", "segment", "starts", "with", "exists",
        "3d", "1", "utm-source", "a..b", ".x", "x.", "a.1", "say \"hi\"", "back\\slash", "tab\there", "new\nline",
        "café", "名前", "🎉 party", "zero\u200Bwidth", "non\u00A0breaking", "line\u2028sep", " padded ", "😀", "\u0001",
        "e", "E5", "x_y.z_1", "\"", "\\", "/", "a/b", "{", "[x]", "a,b", "a:b", "-", "=",
    ];

    private static readonly string[] Numbers =
    [
        "0", "-0", "1", "-1", "42", "3.14", "12.50", "-0.001", "1e3", "1E+3", "2.5e-7", "-6.02E23", "1E+400",
        "123456789012345678901234567890", "0.0", "100",
    ];

    private static readonly char[] Characters =
    [
        'a', 'b', 'Z', '0', '9', ' ', '_', '.', '-', '"', '\\', '/', '\n', '\t', '\u0000', '\u001F', '\u007F', 'é',
        'ß', '名', '\u200B', '\u00A0', '\u2028', '\uFEFF', '\uE000', '(', ')', ',', '[', ']', '{', '}', '=', '<', '>',
        '!', ':', '\'', '#',
    ];

    private readonly Random _random = new(seed);

    /// <summary>A random condition nested at most <paramref name="depth"/> levels of and/or/not.</summary>
    public AudienceCondition Condition(int depth = 4)
    {
        var kind = _random.Next(depth > 0 ? 10 : 7);
        return kind switch
        {
            0 or 1 => Comparison(),
            2 => Event(),
            3 => Sequence(),
            4 => new SegmentReference(Name()),
            5 => Event(),
            6 => Comparison(),
            7 => new AllOf(Children(depth)),
            8 => new AnyOf(Children(depth)),
            _ => new NotCondition(Condition(depth - 1)),
        };
    }

    public string Name()
    {
        var name = _random.Next(4) switch
        {
            0 => Text(1 + _random.Next(8)),
            _ => Names[_random.Next(Names.Length)],
        };
        return string.IsNullOrWhiteSpace(name) ? "x" + name : name;
    }

    private List<AudienceCondition> Children(int depth)
    {
        // One child in about one case in six: {"and": [C]} is valid JSON and needs its own text form.
        var count = _random.Next(6) == 0 ? 1 : 2 + _random.Next(3);
        return [.. Enumerable.Range(0, count).Select(_ => Condition(depth - 1))];
    }

    private AudienceCondition Comparison()
    {
        var op = Operators[_random.Next(Operators.Length)];
        var value = ValueFor(op);
        return _random.Next(3) switch
        {
            0 => new TraitCondition(Name(), op, value),
            1 => new IdentifierCondition(Name(), op, value),
            _ => new ComputedCondition(Name(), op, value),
        };
    }

    private PropertyFilter Filter()
    {
        var op = Operators[_random.Next(Operators.Length)];
        return new PropertyFilter(Name(), op, ValueFor(op));
    }

    private List<PropertyFilter> Where(int most) => [.. Enumerable.Range(0, _random.Next(most + 1)).Select(_ => Filter())];

    private EventCondition Event()
    {
        var window = _random.Next(6) switch
        {
            0 => TimeWindow.AllTime,
            1 or 2 => new TimeWindow(Duration(), null, null),
            3 => new TimeWindow(null, Instant(), null),
            4 => new TimeWindow(null, null, Instant()),
            _ => Between(),
        };
        var e = new EventCondition(Name(), Where(3), window);
        return _random.Next(3) switch
        {
            0 => e,
            1 => e with { Count = Measure() },
            _ => e with { SumProperty = Name(), Sum = Measure() },
        };
    }

    private TimeWindow Between()
    {
        var (a, b) = (Instant(), Instant());
        while (a == b) { b = Instant(); }
        return new TimeWindow(null, a < b ? a : b, a < b ? b : a);
    }

    private SequenceCondition Sequence()
    {
        var steps = Enumerable.Range(0, 2 + _random.Next(AudienceDefinition.MaxSequenceSteps - 1))
            .Select(_ => new SequenceStep(Name(), Where(2), _random.Next(3) == 0));
        return new SequenceCondition([.. steps], Duration());
    }

    private NumberComparison Measure()
    {
        var op = NumberComparison.Operators[_random.Next(NumberComparison.Operators.Count)];
        var value = _random.Next(8) switch
        {
            0 => decimal.MaxValue,
            1 => 0m,
            _ => new decimal(_random.Next(), 0, 0, _random.Next(4) == 0, (byte)_random.Next(5)),
        };
        return new NumberComparison(op, value);
    }

    private TimeSpan Duration()
    {
        if (_random.Next(20) == 0) { return Tessera.Core.Conditions.Duration.Max; }
        var unit = _random.Next(5) switch
        {
            0 => TimeSpan.FromSeconds(1),
            1 => TimeSpan.FromMinutes(1),
            2 => TimeSpan.FromHours(1),
            3 => TimeSpan.FromDays(1),
            _ => TimeSpan.FromDays(7),
        };
        return unit * (1 + _random.Next(1000));
    }

    private DateTimeOffset Instant()
    {
        var ticks = new DateTime(1970, 1, 1).Ticks + _random.NextInt64(new DateTime(2100, 1, 1).Ticks - new DateTime(1970, 1, 1).Ticks);
        if (_random.Next(2) == 0) { ticks -= ticks % TimeSpan.TicksPerDay; } // plain dates too
        return new DateTimeOffset(ticks, TimeSpan.Zero);
    }

    /// <summary>A value the op accepts: none for exists, a list for in, a number or string for ordering, anything else otherwise.</summary>
    private JsonElement? ValueFor(string op) => op switch
    {
        "exists" or "not_exists" => null,
        "in" or "not_in" => Element(List(2)),
        "gt" or "gte" or "lt" or "lte" => Element(_random.Next(2) == 0 ? Number() : Quote(_random.Next(2) == 0 ? "2026-01-31" : Text(_random.Next(6)))),
        _ => Element(Json(2, allowNull: false)),
    };

    private string Json(int depth, bool allowNull = true) => _random.Next(depth > 0 ? 7 : 5) switch
    {
        0 or 1 => Quote(Text(_random.Next(8))),
        2 => Number(),
        3 => _random.Next(2) == 0 ? "true" : "false",
        4 => allowNull ? "null" : Number(),
        5 => List(depth - 1),
        _ => Object(depth - 1),
    };

    private string List(int depth) => "[" + string.Join(",", Enumerable.Range(0, _random.Next(4)).Select(_ => Json(depth))) + "]";

    private string Object(int depth)
    {
        var keys = Enumerable.Range(0, _random.Next(4)).Select(_ => Text(_random.Next(5))).Distinct();
        return "{" + string.Join(",", keys.Select(k => Quote(k) + ":" + Json(depth))) + "}";
    }

    private string Number() => Numbers[_random.Next(Numbers.Length)];

    private string Text(int length)
    {
        var text = new StringBuilder();
        for (var i = 0; i < length; i++)
        {
            if (_random.Next(12) == 0) { text.Append("😀"); } // a surrogate pair
            else { text.Append(Characters[_random.Next(Characters.Length)]); }
        }

        return text.ToString();
    }

    private static string Quote(string text) => JsonSerializer.Serialize(text);

    private static JsonElement Element(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    /// <summary>Shown when a generated case fails, so it can be replayed: <c>new RandomDefinitions(seed)</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"RandomDefinitions({seed})");
}
