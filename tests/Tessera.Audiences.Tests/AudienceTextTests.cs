using System.Text.Json;
using Tessera.Core.Audiences;
using static Tessera.Audiences.Tests.Definitions;

namespace Tessera.Audiences.Tests;

/// <summary>The text form, construct by construct: what each one means in JSON, how it is written back, and its errors.</summary>
public sealed class AudienceTextTests
{
    [Fact]
    public void the_issue_example_reads_as_a_trait_and_an_event_count()
    {
        var text = """trait plan = "pro" and count(event "Order Completed" where revenue > 50, within 30d) >= 3""";
        var expected = """
            {"and": [
              {"trait": "plan", "op": "eq", "value": "pro"},
              {"event": "Order Completed", "where": [{"property": "revenue", "op": "gt", "value": 50}], "within": "30d",
               "count": {"op": "gte", "value": 3}}]}
            """;
        var condition = Text(text);
        Assert.Equal(CanonicalJson(expected), Canonical(condition));
        Assert.Equal(text, AudienceText.Format(condition));
    }

    [Theory]
    [InlineData("""trait plan = "pro" """, """{"trait":"plan","op":"eq","value":"pro"}""")]
    [InlineData("""trait plan != "pro" """, """{"trait":"plan","op":"neq","value":"pro"}""")]
    [InlineData("computed total_spent > 500", """{"computed":"total_spent","op":"gt","value":500}""")]
    [InlineData("computed total_spent >= 500.50", """{"computed":"total_spent","op":"gte","value":500.50}""")]
    [InlineData("trait age < 18", """{"trait":"age","op":"lt","value":18}""")]
    [InlineData("trait balance <= -1.5e2", """{"trait":"balance","op":"lte","value":-1.5e2}""")]
    [InlineData("""trait email contains "@example.com" """, """{"trait":"email","op":"contains","value":"@example.com"}""")]
    [InlineData("""trait name starts with "Dr" """, """{"trait":"name","op":"starts_with","value":"Dr"}""")]
    [InlineData("""trait name ends with "son" """, """{"trait":"name","op":"ends_with","value":"son"}""")]
    [InlineData("""trait plan in ["pro", "team"]""", """{"trait":"plan","op":"in","value":["pro","team"]}""")]
    [InlineData("trait tier not in [1, 2]", """{"trait":"tier","op":"not_in","value":[1,2]}""")]
    [InlineData("identifier email exists", """{"identifier":"email","op":"exists"}""")]
    [InlineData("identifier phone not exists", """{"identifier":"phone","op":"not_exists"}""")]
    [InlineData("""identifier email ends with "@example.com" """, """{"identifier":"email","op":"ends_with","value":"@example.com"}""")]
    [InlineData("""trait signed_up_at >= "2026-01-01" """, """{"trait":"signed_up_at","op":"gte","value":"2026-01-01"}""")]
    [InlineData("trait beta = true", """{"trait":"beta","op":"eq","value":true}""")]
    [InlineData("trait beta != false", """{"trait":"beta","op":"neq","value":false}""")]
    [InlineData("""trait tags = ["a", null, 1.0, [], {}]""", """{"trait":"tags","op":"eq","value":["a",null,1.0,[],{}]}""")]
    [InlineData("""trait address = {"city": "Paris", "zip": 75001}""", """{"trait":"address","op":"eq","value":{"city":"Paris","zip":75001}}""")]
    [InlineData("""trait "favourite colour" = "blue" """, """{"trait":"favourite colour","op":"eq","value":"blue"}""")]
    [InlineData("""trait "and" exists""", """{"trait":"and","op":"exists"}""")]
    [InlineData("""trait x = "q\"b\\s\n\t\u00e9\/" """, """{"trait":"x","op":"eq","value":"q\"b\\s\n\t\u00e9/"}""")]
    [InlineData("""trait "名前" = "café 🎉" """, """{"trait":"名前","op":"eq","value":"café 🎉"}""")]
    [InlineData("trait context.device.type exists", """{"trait":"context.device.type","op":"exists"}""")]
    public void comparisons_cover_every_operator_and_value_kind(string text, string json) =>
        Assert.Equal(CanonicalJson(json), Canonical(Text(text)));

    [Theory]
    [InlineData("event Signup", """{"event":"Signup"}""")]
    [InlineData("""event "Order Completed" """, """{"event":"Order Completed"}""")]
    [InlineData(
        """event "Order Completed" where revenue > 50 and context.campaign.source = "newsletter" and "line items" exists""",
        """{"event":"Order Completed","where":[{"property":"revenue","op":"gt","value":50},{"property":"context.campaign.source","op":"eq","value":"newsletter"},{"property":"line items","op":"exists"}]}""")]
    [InlineData("""event "Order Completed" within 30d""", """{"event":"Order Completed","within":"30d"}""")]
    [InlineData("event Login within 2w", """{"event":"Login","within":"14d"}""")]
    [InlineData("event Login within 36h", """{"event":"Login","within":"36h"}""")]
    [InlineData("event Login within 90s", """{"event":"Login","within":"90s"}""")]
    [InlineData("""event Login from "2026-01-01" """, """{"event":"Login","from":"2026-01-01"}""")]
    [InlineData("""event Login to "2026-02-01T12:30:00Z" """, """{"event":"Login","to":"2026-02-01T12:30:00Z"}""")]
    [InlineData("""event Login from "2026-01-01" to "2026-02-01" """, """{"event":"Login","from":"2026-01-01","to":"2026-02-01"}""")]
    [InlineData("""event Login to "2026-02-01" from "2026-01-01" """, """{"event":"Login","from":"2026-01-01","to":"2026-02-01"}""")]
    [InlineData("""event Login where plan in ["pro"] within 7d""", """{"event":"Login","where":[{"property":"plan","op":"in","value":["pro"]}],"within":"7d"}""")]
    [InlineData("count(event Login) = 0", """{"event":"Login","count":{"op":"eq","value":0}}""")]
    [InlineData("count(event Login within 7d) < 2", """{"event":"Login","within":"7d","count":{"op":"lt","value":2}}""")]
    [InlineData(
        """count(event Login where device = "ios", from "2026-01-01") != 1""",
        """{"event":"Login","where":[{"property":"device","op":"eq","value":"ios"}],"from":"2026-01-01","count":{"op":"neq","value":1}}""")]
    [InlineData(
        """sum(revenue of event "Order Completed", within 90d) >= 100""",
        """{"event":"Order Completed","within":"90d","sum":{"property":"revenue","op":"gte","value":100}}""")]
    [InlineData(
        """sum("line total" of event Order where currency = "EUR", from "2026-01-01" to "2026-04-01") <= 99.95""",
        """{"event":"Order","where":[{"property":"currency","op":"eq","value":"EUR"}],"from":"2026-01-01","to":"2026-04-01","sum":{"property":"line total","op":"lte","value":99.95}}""")]
    [InlineData("sum(properties.total of event Order) > -5", """{"event":"Order","sum":{"property":"properties.total","op":"gt","value":-5}}""")]
    public void event_conditions_cover_filters_windows_counts_and_sums(string text, string json) =>
        Assert.Equal(CanonicalJson(json), Canonical(Text(text)));

    [Theory]
    [InlineData(
        """sequence(first event "Page Viewed", event "Order Completed" where product_id = "p-42", within 15m)""",
        """{"sequence":[{"event":"Page Viewed","first":true},{"event":"Order Completed","where":[{"property":"product_id","op":"eq","value":"p-42"}]}],"within":"15m"}""")]
    [InlineData(
        "sequence(event A, first event B where x exists and y = 1, event C, within 1d)",
        """{"sequence":[{"event":"A"},{"event":"B","first":true,"where":[{"property":"x","op":"exists"},{"property":"y","op":"eq","value":1}]},{"event":"C"}],"within":"1d"}""")]
    [InlineData("""in segment "seg_123" """, """{"segment":"seg_123"}""")]
    [InlineData("""not in segment "seg_123" """, """{"not":{"segment":"seg_123"}}""")]
    [InlineData("all(trait a exists)", """{"and":[{"trait":"a","op":"exists"}]}""")]
    [InlineData("any(trait a exists)", """{"or":[{"trait":"a","op":"exists"}]}""")]
    [InlineData("all(trait a exists, trait b exists or trait c exists)", """{"and":[{"trait":"a","op":"exists"},{"or":[{"trait":"b","op":"exists"},{"trait":"c","op":"exists"}]}]}""")]
    public void sequences_segments_and_lists_read_as_their_json(string text, string json) =>
        Assert.Equal(CanonicalJson(json), Canonical(Text(text)));

    [Theory]
    [InlineData("trait a exists or trait b exists and trait c exists", """{"or":[A,{"and":[B,C]}]}""")]
    [InlineData("trait a exists and trait b exists or trait c exists", """{"or":[{"and":[A,B]},C]}""")]
    [InlineData("not trait a exists and trait b exists", """{"and":[{"not":A},B]}""")]
    [InlineData("not trait a exists or trait b exists", """{"or":[{"not":A},B]}""")]
    [InlineData("not (trait a exists or trait b exists)", """{"not":{"or":[A,B]}}""")]
    [InlineData("(trait a exists or trait b exists) and trait c exists", """{"and":[{"or":[A,B]},C]}""")]
    [InlineData("trait a exists and trait b exists and trait c exists", """{"and":[A,B,C]}""")]
    [InlineData("trait a exists and (trait b exists and trait c exists)", """{"and":[A,{"and":[B,C]}]}""")]
    [InlineData("((trait a exists))", "A")]
    [InlineData("not not trait a exists", """{"not":{"not":A}}""")]
    [InlineData("event E where a exists and b exists and trait c exists", """{"and":[{"event":"E","where":[{"property":"a","op":"exists"},{"property":"b","op":"exists"}]},C]}""")]
    [InlineData("event E where a exists and \"b\" exists or trait c exists", """{"or":[{"event":"E","where":[{"property":"a","op":"exists"},{"property":"b","op":"exists"}]},C]}""")]
    [InlineData("not event E where a exists and b exists", """{"not":{"event":"E","where":[{"property":"a","op":"exists"},{"property":"b","op":"exists"}]}}""")]
    [InlineData("not event E where a exists and not trait c exists", """{"and":[{"not":{"event":"E","where":[{"property":"a","op":"exists"}]}},{"not":C}]}""")]
    public void not_binds_tighter_than_and_which_binds_tighter_than_or(string text, string json)
    {
        var expanded = json.Replace("A", """{"trait":"a","op":"exists"}""", StringComparison.Ordinal)
            .Replace("B", """{"trait":"b","op":"exists"}""", StringComparison.Ordinal)
            .Replace("C", """{"trait":"c","op":"exists"}""", StringComparison.Ordinal);
        Assert.Equal(CanonicalJson(expanded), Canonical(Text(text)));
    }

    [Fact]
    public void keywords_are_case_insensitive_and_names_are_not()
    {
        var condition = Text("""NOT Trait Plan STARTS With "p" AND Count(Event Login WHERE Device In ["ios"], Within 7d) >= 1 Or IN SEGMENT "s" """);
        Assert.Equal(
            """(not trait Plan starts with "p" and count(event Login where Device in ["ios"], within 7d) >= 1) or in segment "s" """.TrimEnd(),
            AudienceText.Format(condition));
        Assert.Equal(CanonicalJson("""{"trait":"TRUE","op":"eq","value":true}"""), Canonical(Text("""trait "TRUE" = TRUE""")));
    }

    [Fact]
    public void whitespace_and_line_breaks_between_tokens_do_not_matter()
    {
        var spaced = Text("\n  trait plan=\"pro\"\r\n\tand count( event \"Order Completed\"where revenue>50 ,within 30d )>=3  \n");
        Assert.Equal(
            Canonical(Text("""trait plan = "pro" and count(event "Order Completed" where revenue > 50, within 30d) >= 3""")),
            Canonical(spaced));
    }

    [Theory]
    [InlineData("plan", "plan")]
    [InlineData("_x1", "_x1")]
    [InlineData("context.campaign.source", "context.campaign.source")]
    [InlineData("Order Completed", "\"Order Completed\"")]
    [InlineData("and", "\"and\"")]
    [InlineData("Within", "\"Within\"")]
    [InlineData("null", "\"null\"")]
    [InlineData("3d", "\"3d\"")]
    [InlineData("utm-source", "\"utm-source\"")]
    [InlineData("a..b", "\"a..b\"")]
    [InlineData("x.", "\"x.\"")]
    [InlineData(".x", "\".x\"")]
    [InlineData("a.1", "\"a.1\"")]
    [InlineData("café", "\"café\"")]
    [InlineData("say \"hi\"", "\"say \\\"hi\\\"\"")]
    [InlineData("back\\slash", "\"back\\\\slash\"")]
    [InlineData("tab\there", "\"tab\\there\"")]
    [InlineData("zero\u200Bwidth", "\"zero\\u200Bwidth\"")]
    [InlineData("non\u00A0breaking", "\"non\\u00A0breaking\"")]
    [InlineData("🎉", "\"🎉\"")]
    public void format_quotes_a_name_only_when_it_is_not_a_plain_dotted_word_or_is_a_keyword(string name, string written)
    {
        var condition = new TraitCondition(name, "exists", null);
        var text = AudienceText.Format(condition);
        Assert.Equal($"trait {written} exists", text);
        Assert.Equal(Canonical(condition), Canonical(Text(text)));
    }

    [Theory]
    [InlineData("""{"and":[{"and":[A,B]},C]}""", "(trait a exists and trait b exists) and trait c exists")]
    [InlineData("""{"or":[{"or":[A,B]},C]}""", "(trait a exists or trait b exists) or trait c exists")]
    [InlineData("""{"or":[A,{"and":[B,C]}]}""", "trait a exists or (trait b exists and trait c exists)")]
    [InlineData("""{"and":[A,{"or":[B,C]}]}""", "trait a exists and (trait b exists or trait c exists)")]
    [InlineData("""{"not":{"or":[A,B]}}""", "not (trait a exists or trait b exists)")]
    [InlineData("""{"not":{"not":A}}""", "not not trait a exists")]
    [InlineData("""{"and":[{"or":[A]}]}""", "all(any(trait a exists))")]
    [InlineData("""{"not":{"and":[A]}}""", "not all(trait a exists)")]
    [InlineData("""{"and":[{"event":"E","where":[{"property":"p","op":"eq","value":1}]},C]}""", "event E where p = 1 and trait c exists")]
    [InlineData("""{"event":"E","within":"14d","count":{"op":"gte","value":3.50}}""", "count(event E, within 14d) >= 3.50")]
    [InlineData("""{"event":"E","from":"2026-01-01","to":"2026-01-31T12:00:00.5+02:00"}""", """event E from "2026-01-01" to "2026-01-31T10:00:00.5Z" """)]
    [InlineData("""{"trait":"t","op":"eq","value":1.50E+3}""", "trait t = 1.50E+3")]
    [InlineData("""{"trait":"t","op":"in","value":[ "a" , {"k" :[ ]} ]}""", """trait t in ["a", {"k": []}]""")]
    [InlineData("""{"sequence":[{"event":"A"},{"event":"B","first":true}],"within":"2w"}""", "sequence(event A, first event B, within 14d)")]
    public void format_writes_the_canonical_text(string json, string text)
    {
        var expanded = json.Replace("A,", """{"trait":"a","op":"exists"},""", StringComparison.Ordinal)
            .Replace("[A]", """[{"trait":"a","op":"exists"}]""", StringComparison.Ordinal)
            .Replace(":A}", """:{"trait":"a","op":"exists"}}""", StringComparison.Ordinal)
            .Replace("B,", """{"trait":"b","op":"exists"},""", StringComparison.Ordinal)
            .Replace("B]", """{"trait":"b","op":"exists"}]""", StringComparison.Ordinal)
            .Replace("C]", """{"trait":"c","op":"exists"}]""", StringComparison.Ordinal);
        var condition = AudienceDefinition.Parse(expanded, out var errors);
        Assert.True(condition is not null, string.Join("; ", errors));
        Assert.Equal(text.TrimEnd(), AudienceText.Format(condition));
        Assert.Equal(Canonical(condition), Canonical(Text(text)));
    }

    [Theory]
    [InlineData("", "line 1, column 1", "expected a condition (trait, identifier, computed, event, count, sum, sequence, in segment, not, all, any or '('), found the end of the text")]
    [InlineData("plan = \"pro\"", "line 1, column 1", "expected a condition (trait, identifier, computed, event, count, sum, sequence, in segment, not, all, any or '('), found 'plan'")]
    [InlineData("trait plan \"pro\"", "line 1, column 12", "expected a comparison operator (=, !=, >, >=, <, <=, contains, starts with, ends with, in, not in, exists, not exists) after trait plan, found the string \"pro\"")]
    [InlineData("trait plan == \"pro\"", "line 1, column 13", "expected a value (a \"string\", a number, true, false, null, a [list] or an {\"object\": ...}) after trait plan =, found '='")]
    [InlineData("trait plan =", "line 1, column 13", "expected a value (a \"string\", a number, true, false, null, a [list] or an {\"object\": ...}) after trait plan =, found the end of the text")]
    [InlineData("trait and = 1", "line 1, column 7", "expected a trait name after trait, found 'and' ('and' is a keyword: write \"and\" to use it as a name)")]
    [InlineData("identifier 42 exists", "line 1, column 12", "expected an identifier type after identifier, found the number 42")]
    [InlineData("trait plan starts \"p\"", "line 1, column 19", "expected with after starts, found the string \"p\"")]
    [InlineData("trait plan not \"p\"", "line 1, column 16", "expected in or exists after not, found the string \"p\"")]
    [InlineData("trait x = 01", "line 1, column 11", "expected a value (a \"string\", a number, true, false, null, a [list] or an {\"object\": ...}) after trait x =, found '01'")]
    [InlineData("trait x in [1, 2", "line 1, column 17", "expected ']' to close the list opened at line 1, column 12, found the end of the text")]
    [InlineData("trait x = {\"a\": 1, \"a\": 2}", "line 1, column 20", "the key \"a\" appears twice in this object")]
    [InlineData("trait x = {a: 1}", "line 1, column 12", "expected a key in quotes in the object, found 'a'")]
    [InlineData("trait x = \"abc", "line 1, column 11", "this string is never closed: a '\"' is missing")]
    [InlineData("trait x = \"a\\qb\"", "line 1, column 13", "'\\q' is not an escape: use \\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t or \\u followed by four hex digits")]
    [InlineData("trait x = \"\\u12\"", "line 1, column 12", "'\\u12\"' is not an escape: use \\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t or \\u followed by four hex digits")]
    [InlineData("trait x = \"\\uDC00\"", "line 1, column 11", "this string holds an unpaired surrogate (\\uDC00), which is not valid Unicode text")]
    [InlineData("trait x = \"a\tb\"", "line 1, column 13", "a string cannot hold the control character '\\u0009' as it is: write it as an escape such as \\n, \\t or \\u0001")]
    [InlineData("trait x = 1 @", "line 1, column 13", "unexpected character '@'")]
    [InlineData("trait a exists)", "line 1, column 15", "expected 'and', 'or' or the end of the text, found ')'")]
    [InlineData("(trait a exists", "line 1, column 16", "expected ')' to close the '(' at line 1, column 1, found the end of the text")]
    [InlineData("trait a exists or trait b = 1 trait c exists", "line 1, column 31", "expected 'and', 'or' or the end of the text, found 'trait'")]
    [InlineData("all()", "line 1, column 5", "expected a condition (trait, identifier, computed, event, count, sum, sequence, in segment, not, all, any or '('), found ')'")]
    [InlineData("event", "line 1, column 6", "expected an event name after event, found the end of the text")]
    [InlineData("event A where", "line 1, column 14", "expected a property name after event A where, found the end of the text")]
    [InlineData("event A where x = 1 or y exists", "line 1, column 24", "expected a condition (trait, identifier, computed, event, count, sum, sequence, in segment, not, all, any or '('), found 'y'")]
    [InlineData("event A, within 30d", "line 1, column 8", "expected 'and', 'or' or the end of the text, found ','")]
    [InlineData("event A within 30d within 7d", "line 1, column 20", "'within' is given twice for one event condition")]
    [InlineData("event A within \"30d\"", "line 1, column 16", "expected a duration such as 15m, 12h, 30d or 2w after within, found the string \"30d\"")]
    [InlineData("event A from 2026-01-01", "line 1, column 14", "expected a date in quotes, such as \"2026-01-31\" or \"2026-01-31T12:00:00Z\", after from, found the number 2026")]
    [InlineData("count(event A, within 30d) 3", "line 1, column 28", "expected a comparison (=, !=, >, >=, <, <=) after count(...), found the number 3")]
    [InlineData("count(event A, within 30d) >= \"3\"", "line 1, column 31", "expected a number after count(...) >=, found the string \"3\"")]
    [InlineData("count(event A, within 30d) >= 3d", "line 1, column 31", "expected a number after count(...) >=, found '3d'")]
    [InlineData("count(event A,) >= 3", "line 1, column 15", "expected within, from or to after ',', found ')'")]
    [InlineData("count(trait a exists) > 1", "line 1, column 7", "expected event after count(, found 'trait'")]
    [InlineData("sum(revenue event A) > 1", "line 1, column 13", "expected of after sum(revenue, found 'event'")]
    [InlineData("sum(revenue of event A) contains 1", "line 1, column 25", "expected a comparison (=, !=, >, >=, <, <=) after sum(revenue of ...), found 'contains'")]
    [InlineData("sequence(event A event B, within 5m)", "line 1, column 18", "expected ',' or ')' after a sequence step, found 'event'")]
    [InlineData("sequence(event A, within 5m, event B)", "line 1, column 28", "expected ')' after the sequence's within (within comes last), found ','")]
    [InlineData("sequence(first A, event B, within 5m)", "line 1, column 16", "expected event after first, found 'A'")]
    [InlineData("sequence(event A, event B within 5m)", "line 1, column 27", "expected ',' or ')' after a sequence step, found 'within'")]
    [InlineData("in segment seg_1", "line 1, column 12", "expected the audience's id as a quoted string, such as \"seg_123\", after in segment, found 'seg_1'")]
    [InlineData("in \"seg_1\"", "line 1, column 4", "expected segment after in, found the string \"seg_1\"")]
    [InlineData("trait plan = \"pro\"\n  and count(event X,\n            within 30d) >= 3 xyz", "line 3, column 30", "expected 'and', 'or' or the end of the text, found 'xyz'")]
    [InlineData("trait \"名前🎉\" = 1 ?", "line 1, column 17", "unexpected character '?'")]
    public void syntax_errors_name_what_was_expected_what_was_found_and_where(string text, string path, string message)
    {
        var error = Assert.Single(Errors(text));
        Assert.Equal(message, error.Message);
        Assert.Equal(path, error.Path);
    }

    [Theory]
    [InlineData("event A within 30d from \"2026-01-01\"", "line 1, column 16", "'within' cannot be combined with 'from'/'to': use a relative window or absolute bounds")]
    [InlineData("count(event A, to \"2026-01-01\" within 1d) > 1", "line 1, column 39", "'within' cannot be combined with 'from'/'to': use a relative window or absolute bounds")]
    [InlineData("event A within 0d", "line 1, column 16", "'0d' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("event A within 30", "line 1, column 16", "'30' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("event A within 5y", "line 1, column 16", "'5y' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("event A within 99999999999999d", "line 1, column 16", "'99999999999999d' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("event A from \"yesterday\"", "line 1, column 14", "'yesterday' is not an ISO 8601 date or time such as \"2026-01-31\" or \"2026-01-31T12:00:00Z\"")]
    [InlineData("event A from \"2026-02-01\" to \"2026-01-01\"", "line 1, column 30", "'to' must be after 'from'")]
    [InlineData("sequence(event A, within 5m)", "line 1, column 1", "the sequence must have at least two steps")]
    [InlineData("sequence(within 5m)", "line 1, column 1", "the sequence must have at least two steps")]
    [InlineData("sequence(event A, event B, event C, event D, event E, event F, event G, within 5m)", "line 1, column 1", "the sequence has 7 steps; at most 6 are allowed")]
    [InlineData("sequence(event A, event B)", "line 1, column 26", "'within' is required: the longest time from the first step to the last, e.g. \"15m\"")]
    [InlineData("sequence(event A, event B, within 0m)", "line 1, column 35", "'0m' is not a duration such as 15m, 2h, 30d or 1w (at most 36500d)")]
    [InlineData("trait x in \"a\"", "line 1, column 12", "value must be an array for 'in'")]
    [InlineData("trait x not in 1", "line 1, column 16", "value must be an array for 'not in'")]
    [InlineData("trait x > true", "line 1, column 11", "value must be a number or a date for '>'")]
    [InlineData("trait x <= [1]", "line 1, column 12", "value must be a number or a date for '<='")]
    [InlineData("trait x = null", "line 1, column 11", "value is required for '='")]
    [InlineData("trait \"\" exists", "line 1, column 7", "the trait name must be a non-empty string, not ''")]
    [InlineData("event \"  \"", "line 1, column 7", "the event name must be a non-empty string, not '  '")]
    [InlineData("event A where \"\" exists", "line 1, column 15", "the property name must be a non-empty string, not ''")]
    [InlineData("sum(\"\" of event A) > 1", "line 1, column 5", "the property name must be a non-empty string, not ''")]
    [InlineData("in segment \" \"", "line 1, column 12", "the audience id must be the id of an audience")]
    [InlineData("count(event A) >= 1e40", "line 1, column 19", "1e40 is out of range for a decimal number")]
    public void validation_errors_are_the_json_rules_pointed_at_the_text(string text, string path, string message)
    {
        var error = Assert.Single(Errors(text));
        Assert.Equal(message, error.Message);
        Assert.Equal(path, error.Path);
    }

    [Fact]
    public void every_validation_error_is_reported_each_at_its_place()
    {
        var text = "trait plan in \"pro\"\nand event A within 0d\nand (sequence(event B, within 5m) or event C from \"x\")";
        var errors = Errors(text);
        Assert.Equal(
            ["line 1, column 15", "line 2, column 20", "line 3, column 6", "line 3, column 51"],
            errors.Select(e => e.Path));
    }

    [Fact]
    public void nesting_beyond_the_json_limit_is_reported_at_the_node_and_far_beyond_it_by_the_parser()
    {
        // 33 nots: the condition under the 33rd is at depth 33, one more than AudienceDefinition.MaxDepth allows.
        var text = string.Concat(Enumerable.Repeat("not ", 33)) + "trait a exists";
        var error = Assert.Single(Errors(text));
        Assert.Equal("the condition nests deeper than 32 levels", error.Message);
        Assert.Equal("line 1, column 133", error.Path);

        var valid = string.Concat(Enumerable.Repeat("not ", 32)) + "trait a exists";
        Assert.Equal(valid, AudienceText.Format(Text(valid)));

        // Far deeper, the parser stops before the stack is at risk.
        var hostile = new string('(', 100_000) + "trait a exists" + new string(')', 100_000);
        error = Assert.Single(Errors(hostile));
        Assert.Equal("the definition nests deeper than 66 levels of parentheses, not, all and any", error.Message);
        Assert.Equal("line 1, column 67", error.Path);

        var deepValue = "trait a = " + new string('[', 100_000);
        error = Assert.Single(Errors(deepValue));
        Assert.Equal("this value nests deeper than 160 levels", error.Message);
    }

    [Fact]
    public void and_chains_nested_32_deep_round_trip()
    {
        AudienceCondition condition = new TraitCondition("a", "exists", null);
        for (var i = 0; i < AudienceDefinition.MaxDepth; i++) { condition = new AllOf([condition, new TraitCondition("b", "exists", null)]); }
        var text = AudienceText.Format(condition);
        Assert.StartsWith(new string('(', AudienceDefinition.MaxDepth - 1) + "trait a exists and", text, StringComparison.Ordinal);
        Assert.Equal(Canonical(condition), Canonical(Text(text)));
    }

    [Fact]
    public void format_escapes_values_so_that_they_parse_back_exactly()
    {
        var value = JsonSerializer.SerializeToElement("a\"b\\c\n\r\t\b\f\u0000\u001F\u007F\u200B\u2028\u00A0\uFEFF\uE000😀/é");
        var condition = new TraitCondition("t", "eq", value);
        var text = AudienceText.Format(condition);
        Assert.Equal("trait t = \"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0000\\u001F\\u007F\\u200B\\u2028\\u00A0\\uFEFF\\uE000😀/é\"", text);
        Assert.Equal("a\"b\\c\n\r\t\b\f\u0000\u001F\u007F\u200B\u2028\u00A0\uFEFF\uE000😀/é", ((TraitCondition)Text(text)).Value!.Value.GetString());
    }

    [Fact]
    public void a_surrogate_pair_written_as_two_escapes_is_one_character()
    {
        var condition = (TraitCondition)Text("trait t = \"\\uD83D\\uDE00\"");
        Assert.Equal("😀", condition.Value!.Value.GetString());
        Assert.Equal("trait t = \"😀\"", AudienceText.Format(condition));
    }

    [Fact]
    public void columns_count_characters_not_utf16_units()
    {
        var error = Assert.Single(Errors("trait \"😀😀\" exists !"));
        Assert.Equal("line 1, column 19", error.Path);
    }
}
