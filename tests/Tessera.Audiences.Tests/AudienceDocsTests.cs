using System.Text.Json;
using System.Text.RegularExpressions;
using Tessera.Core.Audiences;
using static Tessera.Audiences.Tests.Definitions;

namespace Tessera.Audiences.Tests;

/// <summary>
/// docs/audiences.md stays true: its text examples parse and are canonical, each text followed by JSON is that JSON,
/// its error examples are the errors given, and the seed scenarios select the profiles the docs say they do.
/// </summary>
public sealed partial class AudienceDocsTests
{
    private const string EngagedVisitors = "not identifier email exists";
    private const string LoyalVisitors = "identifier email exists";
    private const string FirstVisitPurchase = """sequence(first event "Page Viewed", event "Order Completed" where product_id = "p-42", within 15m)""";
    private const string BigSpendersNotReading = """sum(revenue of event "Order Completed", within 30d) > 500 and not event "Email Opened" within 14d""";

    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private static readonly Lazy<string> Doc = new(() =>
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Tessera.slnx"))) { directory = directory.Parent; }
        Assert.NotNull(directory);
        return File.ReadAllText(Path.Combine(directory.FullName, "docs", "audiences.md"));
    });

    [Fact]
    public void every_text_example_parses_and_is_written_canonically()
    {
        var blocks = Blocks("text").ToList();
        Assert.True(blocks.Count >= 8, $"only {blocks.Count} text examples found");
        foreach (var (text, _, _) in blocks) { Assert.Equal(text, AudienceText.Format(Text(text))); }
    }

    [Fact]
    public void every_json_example_is_valid_and_a_text_followed_by_json_says_the_same()
    {
        var texts = Blocks("text").ToDictionary(b => b.End, b => b.Body);
        var pairs = 0;
        foreach (var (json, start) in Blocks("json").Select(b => (b.Body, b.Start)))
        {
            var canonical = CanonicalJson(json);
            var before = texts.Keys.Where(end => end <= start && string.IsNullOrWhiteSpace(Doc.Value[end..start])).ToList();
            if (before.Count == 0) { continue; }
            Assert.Equal(canonical, Canonical(Text(texts[before[0]])));
            pairs++;
        }

        Assert.Equal(4, pairs);
    }

    [Fact]
    public void the_side_by_side_table_pairs_each_text_with_its_json()
    {
        var rows = TableRow().Matches(Doc.Value);
        Assert.True(rows.Count >= 14, $"only {rows.Count} rows found");
        foreach (Match row in rows)
        {
            // Not all canonical: the precedence row is written as a person would, without parentheses.
            Assert.Equal(CanonicalJson(row.Groups[2].Value), Canonical(Text(row.Groups[1].Value)));
        }
    }

    [Fact]
    public void the_error_examples_are_the_errors_given()
    {
        var examples = ErrorExample().Matches(Doc.Value);
        Assert.Equal(6, examples.Count);
        foreach (Match example in examples)
        {
            var error = Assert.Single(Errors(example.Groups[1].Value));
            Assert.Equal(example.Groups[2].Value, error.ToString());
        }
    }

    [Fact]
    public void the_seed_scenarios_are_documented_as_tested_here()
    {
        var documented = Blocks("text").Select(b => b.Body).ToList();
        Assert.Contains(EngagedVisitors, documented);
        Assert.Contains(LoyalVisitors, documented);
        Assert.Contains(FirstVisitPurchase, documented);
        Assert.Contains(BigSpendersNotReading, documented);
    }

    [Fact]
    public void a_visitor_leaves_engaged_visitors_for_loyal_visitors_when_an_email_joins_the_profile()
    {
        var (engaged, loyal) = (Text(EngagedVisitors), Text(LoyalVisitors));
        var visitor = new Profile().Track("Page Viewed", Now.AddMinutes(-5));
        visitor.Identifiers("anonymous_id").Add("a-1");
        Assert.True(AudienceEvaluator.Evaluate(engaged, visitor, Now));
        Assert.False(AudienceEvaluator.Evaluate(loyal, visitor, Now));

        visitor.Identifiers("email").Add("ann@example.com");
        Assert.False(AudienceEvaluator.Evaluate(engaged, visitor, Now));
        Assert.True(AudienceEvaluator.Evaluate(loyal, visitor, Now));
    }

    [Fact]
    public void first_visit_purchase_needs_the_first_visit_and_product_x_within_15_minutes()
    {
        var definition = Text(FirstVisitPurchase);
        var arrived = Now.AddDays(-3);
        bool Selects(Profile p) => AudienceEvaluator.Evaluate(definition, p, Now);

        Assert.True(Selects(new Profile().Track("Page Viewed", arrived).Track("Order Completed", arrived.AddMinutes(10), """{"product_id":"p-42"}""")));
        Assert.True(Selects(new Profile().Track("Page Viewed", arrived).Track("Page Viewed", arrived.AddMinutes(1)).Track("Order Completed", arrived.AddMinutes(15), """{"product_id":"p-42"}""")));
        Assert.False(Selects(new Profile().Track("Page Viewed", arrived).Track("Order Completed", arrived.AddMinutes(16), """{"product_id":"p-42"}""")));
        Assert.False(Selects(new Profile().Track("Page Viewed", arrived).Track("Order Completed", arrived.AddMinutes(5), """{"product_id":"p-7"}""")));
        Assert.False(Selects(new Profile().Track("Order Completed", arrived.AddMinutes(-1), """{"product_id":"p-42"}""").Track("Page Viewed", arrived)));

        // A returning visitor: this visit is not their first, so buying quickly after it does not count.
        Assert.False(Selects(new Profile().Track("Page Viewed", arrived.AddDays(-7)).Track("Page Viewed", arrived).Track("Order Completed", arrived.AddMinutes(5), """{"product_id":"p-42"}""")));
    }

    [Fact]
    public void big_spenders_not_reading_need_over_500_in_30_days_and_no_email_opened_in_14()
    {
        var definition = Text(BigSpendersNotReading);
        bool Selects(Profile p) => AudienceEvaluator.Evaluate(definition, p, Now);
        Profile Spent(params (int DaysAgo, decimal Revenue)[] orders)
        {
            var profile = new Profile();
            foreach (var (days, revenue) in orders) { profile.Track("Order Completed", Now.AddDays(-days), $$"""{"revenue":{{revenue}}}"""); }
            return profile;
        }

        Assert.True(Selects(Spent((2, 300m), (29, 250.50m))));
        Assert.True(Selects(Spent((2, 300m), (29, 250.50m)).Track("Email Opened", Now.AddDays(-20))));
        Assert.False(Selects(Spent((2, 300m), (29, 250.50m)).Track("Email Opened", Now.AddDays(-3))));
        Assert.False(Selects(Spent((2, 300m), (31, 250.50m))));
        Assert.False(Selects(Spent((2, 300m), (5, 200m))));

        // A revenue that is not a JSON number is skipped, not read as text.
        Assert.True(Selects(Spent((2, 400m), (1, 101m)).Track("Order Completed", Now.AddDays(-1), """{"revenue":"600"}""")));
        Assert.False(Selects(Spent((2, 400m)).Track("Order Completed", Now.AddDays(-1), """{"revenue":"600"}""")));
    }

    /// <summary>Fenced blocks of one language: their body (trimmed) and where the block starts and ends in the doc.</summary>
    private static IEnumerable<(string Body, int Start, int End)> Blocks(string language)
    {
        foreach (Match block in FencedBlock().Matches(Doc.Value))
        {
            if (block.Groups[1].Value == language) { yield return (block.Groups[2].Value.Trim(), block.Index, block.Index + block.Length); }
        }
    }

    [GeneratedRegex(@"^```(\w*)\n(.*?)^```\n?", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex FencedBlock();

    [GeneratedRegex(@"^\| `([^`]+)` \| `([^`]+)` \|$", RegexOptions.Multiline)]
    private static partial Regex TableRow();

    /// <summary>In the errors section's plain blocks: a line of text, then the line <c>line L, column C: message</c>.</summary>
    [GeneratedRegex(@"^([^\n]+)\n(line \d+, column \d+: [^\n]+)$", RegexOptions.Multiline)]
    private static partial Regex ErrorExample();

    /// <summary>One profile's facts, as the real-time engine would give them, from a full history.</summary>
    private sealed class Profile : IAudienceFacts
    {
        private readonly Dictionary<string, List<string>> _identifiers = [];
        private readonly List<(long Seq, string Name, DateTimeOffset At, JsonElement Message)> _events = [];

        public Profile Track(string name, DateTimeOffset at, string properties = "{}")
        {
            using var message = JsonDocument.Parse($$"""{"type":"track","event":{{JsonSerializer.Serialize(name)}},"properties":{{properties}}}""");
            _events.Add((_events.Count + 1, name, at, message.RootElement.Clone()));
            return this;
        }

        public List<string> Identifiers(string type) => _identifiers.TryGetValue(type, out var values) ? values : _identifiers[type] = [];

        IEnumerable<string> IAudienceFacts.Identifiers(string type) => Identifiers(type);

        public bool TryTrait(string name, out JsonElement value)
        {
            value = default;
            return false;
        }

        public bool TryComputed(string name, DateTimeOffset now, out JsonElement value)
        {
            value = default;
            return false;
        }

        public IReadOnlyList<EventFact> Events(EventSelector selector) =>
            [.. _events.Where(e => selector.Matches(e.Name, e.Message)).Select(e => new EventFact(e.Seq, e.At, selector.NumberOf(e.Message))).Order()];

        public EventFact? FirstEvent(string eventName) =>
            _events.Where(e => e.Name == eventName).Select(e => (EventFact?)new EventFact(e.Seq, e.At, null)).OrderBy(f => f!.Value).FirstOrDefault();

        public AudienceCondition? Definition(string segmentId) => null;
    }
}
