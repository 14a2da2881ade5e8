using System.Text.Json;
using Tessera.Core.Audiences;
using static Tessera.Audiences.Tests.Definitions;

namespace Tessera.Audiences.Tests;

/// <summary>The JSON form's validation: every problem is reported with the path of the node at fault.</summary>
public sealed class DefinitionValidationTests
{
    private static IReadOnlyList<DefinitionError> JsonErrors(string json)
    {
        var condition = AudienceDefinition.Parse(json, out var errors);
        Assert.Null(condition);
        Assert.NotEmpty(errors);
        return errors;
    }

    private static string Nested(string kind, int levels)
    {
        var json = """{"trait":"a","op":"exists"}""";
        for (var i = 0; i < levels; i++) { json = kind == "not" ? $$"""{"not":{{json}}}""" : $$"""{"{{kind}}":[{{json}}]}"""; }
        return json;
    }

    [Theory]
    [InlineData("""{"and":[{"trait":"plan","op":"bogus"}]}""", "and[0].op", "op 'bogus' is not one of eq, neq, gt, gte, lt, lte, contains, starts_with, ends_with, in, not_in, exists, not_exists")]
    [InlineData("""{"or":[{"trait":"a","op":"exists"},{"not":{"trait":"plan","op":"eq"}}]}""", "or[1].not.value", "value is required for op 'eq'")]
    [InlineData("""{"trait":"plan","op":"in","value":"pro"}""", "value", "value must be an array for op 'in'")]
    [InlineData("""{"trait":"plan","op":"not_in","value":{"a":1}}""", "value", "value must be an array for op 'not_in'")]
    [InlineData("""{"trait":"age","op":"gt","value":true}""", "value", "value must be a number or a date for op 'gt'")]
    [InlineData("""{"trait":"age","op":"lte","value":[1]}""", "value", "value must be a number or a date for op 'lte'")]
    [InlineData("""{"trait":"plan","op":"eq","value":null}""", "value", "value is required for op 'eq'")]
    [InlineData("""{"identifier":"email","op":"exists","value":"x"}""", "value", "value is not used with op 'exists': leave it out")]
    [InlineData("""{"trait":"plan","op":"not_exists","value":1}""", "value", "value is not used with op 'not_exists': leave it out")]
    [InlineData("""{"trait":"","op":"exists"}""", "trait", "must be a non-empty string, not ''")]
    [InlineData("""{"computed":7,"op":"exists"}""", "computed", "must be a non-empty string, not 7")]
    [InlineData("""{"trait":"plan"}""", "op", "is required")]
    [InlineData("""{"trait":"plan","op":"exists","colour":"red"}""", "colour", "is not a field here (expected trait, op, value)")]
    [InlineData("""{"not":{"trait":"a","op":"exists"},"extra":1}""", "extra", "is not a field here (expected not)")]
    [InlineData("""{"event":"A","where":[{"property":"x","op":"exists","hint":1}]}""", "where[0].hint", "is not a field here (expected property, op, value)")]
    [InlineData("""{"event":"A","where":[{"op":"exists"}]}""", "where[0].property", "is required")]
    [InlineData("""{"event":"A","where":[{"property":"x","op":"gt","value":false}]}""", "where[0].value", "value must be a number or a date for op 'gt'")]
    [InlineData("""{"event":"A","where":{"property":"x"}}""", "where", "must be an array of property filters")]
    [InlineData("""{"event":"A","where":[3]}""", "where[0]", "must be an object: {\"property\": PATH, \"op\": OP, \"value\": V}")]
    [InlineData("""{"event":"A","when":"30d"}""", "when", "is not a field here (expected event, where, within, from, to, count, sum)")]
    [InlineData("""{"event":"A","within":"30d","from":"2026-01-01"}""", "within", "cannot be combined with 'from'/'to': use a relative window or absolute bounds")]
    [InlineData("""{"event":"A","within":"30d","to":"2026-01-01"}""", "within", "cannot be combined with 'from'/'to': use a relative window or absolute bounds")]
    [InlineData("""{"event":"A","count":{"op":"gte","value":1},"sum":{"property":"r","op":"gte","value":1}}""", "", "has both 'count' and 'sum': use one, or two conditions joined by 'and'")]
    [InlineData("""{"or":[{"segment":"s"},{"event":"A","count":{"op":"gte","value":1},"sum":{"property":"r","op":"gte","value":1}}]}""", "or[1]", "has both 'count' and 'sum': use one, or two conditions joined by 'and'")]
    [InlineData("""{"event":"A","count":{"op":"contains","value":1}}""", "count.op", "'contains' is not one of eq, neq, gt, gte, lt, lte")]
    [InlineData("""{"event":"A","count":{"op":"gte","value":"3"}}""", "count.value", "is required and must be a number")]
    [InlineData("""{"event":"A","count":{"op":"gte"}}""", "count.value", "is required and must be a number")]
    [InlineData("""{"event":"A","count":{"op":"gte","value":1e40}}""", "count.value", "1e40 is out of range for a decimal number")]
    [InlineData("""{"event":"A","count":{"op":"gte","value":1,"of":"x"}}""", "count.of", "is not a field here (expected op, value)")]
    [InlineData("""{"event":"A","count":3}""", "count", "must be an object: {\"op\": \"gte\", \"value\": 3}")]
    [InlineData("""{"event":"A","sum":{"op":"gte","value":1}}""", "sum.property", "is required")]
    [InlineData("""{"event":"A","within":"0d"}""", "within", "'0d' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("""{"event":"A","within":"15x"}""", "within", "'15x' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("""{"event":"A","within":"d"}""", "within", "'d' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("""{"event":"A","within":"-5m"}""", "within", "'-5m' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("""{"event":"A","within":" 5m"}""", "within", "' 5m' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("""{"event":"A","within":30}""", "within", "30 is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("""{"event":"A","within":"36501d"}""", "within", "'36501d' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("""{"event":"A","within":"5215w"}""", "within", "'5215w' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("""{"event":"A","from":"yesterday"}""", "from", "'yesterday' is not an ISO 8601 date or time such as \"2026-01-31\" or \"2026-01-31T12:00:00Z\"")]
    [InlineData("""{"event":"A","to":20260101}""", "to", "20260101 is not an ISO 8601 date or time such as \"2026-01-31\" or \"2026-01-31T12:00:00Z\"")]
    [InlineData("""{"event":"A","from":"2026-02-01","to":"2026-02-01"}""", "to", "must be after 'from'")]
    [InlineData("""{"sequence":[{"event":"A"}],"within":"15m"}""", "sequence", "must be an array of at least two steps")]
    [InlineData("""{"sequence":{"event":"A"},"within":"15m"}""", "sequence", "must be an array of at least two steps")]
    [InlineData("""{"sequence":[{"event":"A"},{"event":"B"},{"event":"C"},{"event":"D"},{"event":"E"},{"event":"F"},{"event":"G"}],"within":"15m"}""", "sequence", "has 7 steps; at most 6 are allowed")]
    [InlineData("""{"sequence":[{"event":"A"},"B"],"within":"15m"}""", "sequence[1]", "must be an object: {\"event\": NAME, \"where\": [...], \"first\": true}")]
    [InlineData("""{"sequence":[{"event":"A"},{"event":"B","first":"yes"}],"within":"15m"}""", "sequence[1].first", "must be true or false")]
    [InlineData("""{"sequence":[{"event":"A"},{"event":"B","within":"5m"}],"within":"15m"}""", "sequence[1].within", "is not a field here (expected event, where, first)")]
    [InlineData("""{"sequence":[{"event":"A"},{"event":"B"}]}""", "within", "is required: the longest time from the first step to the last, e.g. \"15m\"")]
    [InlineData("""{"sequence":[{"event":"A"},{"event":"B"}],"within":"15m","from":"2026-01-01"}""", "from", "is not a field here (expected sequence, within)")]
    [InlineData("""{"sequence":[{"event":"A"},{"event":"B"}],"within":"soon"}""", "within", "'soon' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("""{"segment":""}""", "segment", "must be the id of an audience")]
    [InlineData("""{"segment":42}""", "segment", "must be the id of an audience")]
    [InlineData("""{"and":[]}""", "and", "must hold at least one condition")]
    [InlineData("""{"or":{"trait":"a","op":"exists"}}""", "or", "must be an array of conditions")]
    [InlineData("""{"and":[1]}""", "and[0]", "must be an object (a condition), not number")]
    [InlineData("""[]""", "", "must be an object (a condition), not array")]
    [InlineData("""{}""", "", "is not a condition: expected one of and, or, not, trait, identifier, computed, event, sequence, segment")]
    [InlineData("""{"trait":"a","event":"b","op":"exists"}""", "", "has both 'trait' and 'event': a condition is exactly one of and, or, not, trait, identifier, computed, event, sequence, segment")]
    public void each_problem_is_reported_at_the_path_of_its_node(string json, string path, string message)
    {
        var error = Assert.Single(JsonErrors(json));
        Assert.Equal(path, error.Path);
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void every_problem_in_a_definition_is_reported_at_once()
    {
        var errors = JsonErrors("""
            {"and": [
              {"trait": "", "op": "eq", "value": 1},
              {"event": "A", "within": "0d", "count": {"op": "about", "value": 3}},
              {"or": [{"segment": "s"}, {"sequence": [{"event": "A"}], "within": "15m"}]}
            ]}
            """);
        Assert.Equal(["and[0].trait", "and[1].within", "and[1].count.op", "and[2].or[1].sequence"], errors.Select(e => e.Path));
    }

    [Fact]
    public void invalid_json_is_one_error_at_the_root()
    {
        var error = Assert.Single(JsonErrors("""{"trait": "a", """));
        Assert.Equal("", error.Path);
        Assert.StartsWith("is not valid JSON: ", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not")]
    [InlineData("and")]
    [InlineData("or")]
    public void nesting_is_allowed_to_max_depth_and_refused_beyond_it_at_the_deepest_node(string kind)
    {
        Assert.NotNull(AudienceDefinition.Parse(Nested(kind, AudienceDefinition.MaxDepth), out var errors));
        Assert.Empty(errors);

        var error = Assert.Single(JsonErrors(Nested(kind, AudienceDefinition.MaxDepth + 1)));
        var step = kind == "not" ? "not" : $"{kind}[0]";
        Assert.Equal(string.Join(".", Enumerable.Repeat(step, AudienceDefinition.MaxDepth + 1)), error.Path);
        Assert.Equal("nests deeper than 32 levels", error.Message);
    }

    /// <summary>The reader's default depth (64) was hit by 32 nested ands (two JSON levels each) before MaxDepth could be checked.</summary>
    [Fact]
    public void Bug_and_nested_32_deep_was_rejected_as_invalid_json()
    {
        var json = Nested("and", AudienceDefinition.MaxDepth);
        var condition = AudienceDefinition.Parse(json, out var errors);
        Assert.Empty(errors);
        Assert.Equal(CanonicalJson(json), AudienceDefinition.ToJson(condition!).ToJsonString());
    }

    /// <summary>TimeSpan.FromDays threw OverflowException from inside Parse, so a hostile definition was a 500, not an error.</summary>
    [Theory]
    [InlineData("99999999999d")]
    [InlineData("9999999999999999s")]
    [InlineData("9223372036854775807w")]
    public void Bug_a_huge_duration_threw_instead_of_being_reported(string within)
    {
        var error = Assert.Single(JsonErrors($$"""{"event":"A","within":"{{within}}"}"""));
        Assert.Equal("within", error.Path);
        error = Assert.Single(JsonErrors($$"""{"sequence":[{"event":"A"},{"event":"B"}],"within":"{{within}}"}"""));
        Assert.Equal("within", error.Path);
    }

    [Fact]
    public void the_longest_duration_is_a_century_in_any_unit()
    {
        foreach (var within in new[] { "36500d", "876000h", "52560000m", "3153600000s" })
        {
            var condition = (EventCondition)AudienceDefinition.Parse($$"""{"event":"A","within":"{{within}}"}""", out _)!;
            Assert.Equal(TimeSpan.FromDays(36_500), condition.Window.Within);
            Assert.True(condition.Window.Contains(DateTimeOffset.UtcNow.AddYears(-99), DateTimeOffset.UtcNow));
        }
    }

    /// <summary>GetString() throws on an unpaired surrogate escape; Parse let that escape as an exception.</summary>
    [Theory]
    [InlineData("""{"trait":"\uD800","op":"exists"}""", "trait")]
    [InlineData("""{"trait":"a","op":"eq","value":"x\uDC00"}""", "value")]
    [InlineData("""{"trait":"a","op":"in","value":[1,{"k":["\uD800"]}]}""", "value[1].k[0]")]
    [InlineData("""{"and":[{"segment":"\uDBFF"}]}""", "and[0].segment")]
    public void Bug_an_unpaired_surrogate_threw_instead_of_being_reported(string json, string path)
    {
        var error = Assert.Single(JsonErrors(json));
        Assert.Equal(path, error.Path);
        Assert.Equal("holds text that is not valid Unicode (an unpaired surrogate such as \\uD800)", error.Message);
    }

    [Fact]
    public void an_unpaired_surrogate_in_a_field_name_is_reported_too()
    {
        var error = Assert.Single(JsonErrors("""{"trait":"a","op":"exists","\uD800":1}"""));
        Assert.Equal("", error.Path);
        Assert.StartsWith("has a field name that holds text", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void a_json_null_value_counts_as_no_value()
    {
        var condition = (TraitCondition)AudienceDefinition.Parse("""{"trait":"a","op":"exists","value":null}""", out var errors)!;
        Assert.Empty(errors);
        Assert.Null(condition.Value);
    }

    [Theory]
    [InlineData("""{"trait":"plan","op":"eq","value":"pro"}""")]
    [InlineData("""{"and":[{"identifier":"email","op":"exists"},{"not":{"computed":"spend","op":"gte","value":500.0}}]}""")]
    [InlineData("""{"or":[{"segment":"seg_1"},{"trait":"t","op":"in","value":[1,"a",null,{"k":[]}]}]}""")]
    [InlineData("""{"event":"Order Completed","where":[{"property":"revenue","op":"gt","value":50}],"within":"30d","count":{"op":"gte","value":3}}""")]
    [InlineData("""{"event":"Order Completed","from":"2026-01-01T00:00:00Z","to":"2026-02-01T00:00:00.25Z","sum":{"property":"revenue","op":"gte","value":100}}""")]
    [InlineData("""{"sequence":[{"event":"Page Viewed","first":true},{"event":"Order Completed","where":[{"property":"product_id","op":"eq","value":"p-42"}]}],"within":"15m"}""")]
    public void canonical_json_is_written_back_exactly(string json)
    {
        Assert.Equal(JsonSerializer.Serialize(JsonDocument.Parse(json).RootElement), CanonicalJson(json));
    }
}
