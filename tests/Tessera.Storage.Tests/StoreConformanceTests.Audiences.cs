using System.Text.Json.Nodes;
using Tessera.Core.Audiences;
using Tessera.Core.Collection;
using Tessera.Core.Identity;
using Tessera.Core.Profiles;

namespace Tessera.Storage.Tests;

/// <summary>
/// Audiences in SQL, one behaviour at a time, on hand-made data: each expected member set is written out, and each
/// definition is also checked against the in-memory evaluation.
/// </summary>
public abstract partial class StoreConformanceTests
{
    private static readonly DateTimeOffset AudienceNow = new(2026, 10, 1, 12, 0, 0, TimeSpan.Zero);
    private int _audienceMessages;

    [Fact]
    public async Task trait_conditions_compare_numbers_numeric_strings_dates_and_text_as_property_filters_do()
    {
        var store = await OpenAsync();
        await AppendMessagesAsync(store,
            Identify("u-1", """{"plan":"pro","age":42,"signup":"2026-01-05T00:00:00Z","vip":true,"nickname":null,"address":{"city":"Paris"}}"""),
            Identify("u-2", """{"plan":"free","age":"7","signup":"2025-12-31"}"""),
            Identify("u-3", "{}"));

        async Task Expect(string definition, params string[] users) => Assert.Equal(users, await MembersAsync(store, definition));
        await Expect("""{"trait":"plan","op":"eq","value":"pro"}""", "u-1");
        await Expect("""{"trait":"plan","op":"neq","value":"pro"}""", "u-2", "u-3");
        await Expect("""{"trait":"age","op":"gt","value":10}""", "u-1");
        await Expect("""{"trait":"age","op":"lt","value":10}""", "u-2");
        await Expect("""{"trait":"age","op":"eq","value":7}""");
        await Expect("""{"trait":"signup","op":"gt","value":"2026-01-01T00:00:00Z"}""", "u-1");
        await Expect("""{"trait":"signup","op":"lte","value":"2026-01-01T00:00:00+02:00"}""", "u-2");
        await Expect("""{"trait":"nickname","op":"exists"}""");
        await Expect("""{"trait":"nickname","op":"not_exists"}""", "u-1", "u-2", "u-3");
        await Expect("""{"trait":"vip","op":"eq","value":true}""", "u-1");
        await Expect("""{"trait":"age","op":"contains","value":"4"}""", "u-1");
        await Expect("""{"trait":"plan","op":"in","value":["pro","free"]}""", "u-1", "u-2");
        await Expect("""{"trait":"plan","op":"not_in","value":["pro"]}""", "u-2", "u-3");
        await Expect("""{"trait":"plan","op":"gt","value":"free"}""", "u-1");
        await Expect("""{"trait":"address","op":"eq","value":{"city":"Paris"}}""", "u-1");
    }

    [Fact]
    public async Task identifier_conditions_see_every_identifier_of_a_merged_profile()
    {
        var store = await OpenAsync();
        await AppendMessagesAsync(store,
            Identify("u-1", """{"email":"Ann@Example.com"}"""),
            Track(null, "a-7", "Page Viewed", "{}", AudienceNow.AddDays(-2)),
            Identify("u-1", "{}", anonymousId: "a-7"),
            Identify("u-2", "{}"));

        Assert.Equal(["u-1"], await MembersAsync(store, """{"identifier":"anonymous_id","op":"eq","value":"a-7"}"""));
        Assert.Equal(["u-1"], await MembersAsync(store, """{"identifier":"email","op":"ends_with","value":"@example.com"}"""));
        Assert.Equal(["u-2"], await MembersAsync(store, """{"identifier":"email","op":"not_exists"}"""));
        Assert.Equal(["u-2"], await MembersAsync(store, """{"identifier":"anonymous_id","op":"neq","value":"a-7"}"""));
        Assert.Equal(["u-1", "u-2"], await MembersAsync(store, """{"identifier":"user_id","op":"starts_with","value":"u-"}"""));
    }

    [Fact]
    public async Task event_conditions_count_track_events_of_merged_ids_inside_the_window_and_count_zero_matches_profiles_without_events()
    {
        var store = await OpenAsync();
        await AppendMessagesAsync(store,
            Identify("u-1", "{}", at: AudienceNow.AddDays(-50)),
            // An anonymous visitor's orders, before the visitor signs in as u-1: a second profile, merged into u-1's.
            Track(null, "a-1", "Order Completed", """{"revenue":60}""", AudienceNow.AddDays(-30)),
            Track(null, "a-1", "Order Completed", """{"revenue":"75"}""", AudienceNow.AddDays(-10)),
            Identify("u-1", "{}", anonymousId: "a-1", at: AudienceNow.AddDays(-9)),
            Track("u-1", null, "Order Completed", """{"revenue":45.5}""", AudienceNow.AddMinutes(1)),
            Page("u-2", "Order Completed", AudienceNow.AddDays(-1)),
            Track("u-2", null, "Order Completed", """{"revenue":100}""", AudienceNow.AddDays(-31)),
            Identify("u-3", "{}"));
        Assert.Equal(3, store.Engine.Counts().Profiles);

        async Task Expect(string definition, params string[] users) => Assert.Equal(users, await MembersAsync(store, definition));
        // The window is inclusive at both ends back from now; the event a minute after now is outside.
        await Expect("""{"event":"Order Completed","within":"30d","count":{"op":"eq","value":2}}""", "u-1");
        await Expect("""{"event":"Order Completed","count":{"op":"eq","value":0}}""", "u-3");
        await Expect("""{"not":{"event":"Order Completed","within":"30d"}}""", "u-2", "u-3");
        // A sum adds JSON numbers only: u-1's "75" is text, and its 45.5 is after now.
        await Expect("""{"event":"Order Completed","within":"90d","sum":{"property":"revenue","op":"gte","value":100}}""", "u-2");
        await Expect("""{"event":"Order Completed","within":"30d","sum":{"property":"revenue","op":"eq","value":60}}""", "u-1");
        await Expect("""{"event":"Order Completed","within":"30d","sum":{"property":"revenue","op":"lt","value":1}}""", "u-2", "u-3");
        // Absolute bounds: from inclusive, to exclusive.
        await Expect("""{"event":"Order Completed","from":"2026-09-01T12:00:00Z","to":"2026-09-21T12:00:00Z"}""", "u-1");
        await Expect("""{"event":"Order Completed","from":"2026-08-31T12:00:00Z","to":"2026-09-01T12:00:00Z"}""", "u-2");
        await Expect("""{"event":"Order Completed","where":[{"property":"revenue","op":"gt","value":70}],"count":{"op":"gte","value":1}}""", "u-1", "u-2");
    }

    [Fact]
    public async Task a_property_value_written_with_json_escapes_still_equals_its_string()
    {
        // The raw text holds "p\u002d42", which is "p-42": the SQL may skip rows whose text lacks "p-42" only when the
        // text has no escape at all.
        var store = await OpenAsync();
        await AppendMessagesAsync(store,
            Track("u-1", null, "Order Completed", """{"product_id":"p\u002d42"}""", AudienceNow.AddDays(-1)),
            Track("u-2", null, "Order Completed", """{"product_id":"p-42"}""", AudienceNow.AddDays(-1)),
            Track("u-3", null, "Order Completed", """{"product_id":"p-43","note":"p-42"}""", AudienceNow.AddDays(-1)));

        Assert.Equal(["u-1", "u-2"], await MembersAsync(store, """{"event":"Order Completed","where":[{"property":"product_id","op":"eq","value":"p-42"}]}"""));
        Assert.Equal(["u-1", "u-2"], await MembersAsync(store, """{"event":"Order Completed","where":[{"property":"product_id","op":"in","value":["p-44","p-42"]}]}"""));
    }

    [Fact]
    public async Task sequences_follow_log_order_take_first_as_the_first_event_ever_and_stay_inside_the_window()
    {
        var store = await OpenAsync();
        var t = AudienceNow.AddDays(-5);
        await AppendMessagesAsync(store,
            Track("u-1", null, "Page Viewed", "{}", t),
            Track("u-1", null, "Order Completed", """{"product_id":"p-42"}""", t.AddMinutes(10)),
            Track("u-2", null, "Page Viewed", "{}", t.AddDays(-1)),
            Track("u-2", null, "Page Viewed", "{}", t),
            Track("u-2", null, "Order Completed", """{"product_id":"p-42"}""", t.AddMinutes(5)),
            // Same time: log order (seq) decides which came first.
            Track("u-3", null, "Page Viewed", "{}", t),
            Track("u-3", null, "Order Completed", """{"product_id":"p-42"}""", t),
            Track("u-4", null, "Order Completed", """{"product_id":"p-42"}""", t),
            Track("u-4", null, "Page Viewed", "{}", t),
            Track("u-5", null, "Page Viewed", "{}", t),
            Track("u-5", null, "Order Completed", """{"product_id":"p-42"}""", t.AddMinutes(16)));

        async Task Expect(string definition, params string[] users) => Assert.Equal(users, await MembersAsync(store, definition));
        await Expect("""{"sequence":[{"event":"Page Viewed","first":true},{"event":"Order Completed","where":[{"property":"product_id","op":"eq","value":"p-42"}]}],"within":"15m"}""", "u-1", "u-3");
        await Expect("""{"sequence":[{"event":"Page Viewed"},{"event":"Order Completed","where":[{"property":"product_id","op":"eq","value":"p-42"}]}],"within":"15m"}""", "u-1", "u-2", "u-3");
        await Expect("""{"sequence":[{"event":"Page Viewed"},{"event":"Order Completed"}],"within":"1h"}""", "u-1", "u-2", "u-3", "u-5");
        await Expect("""{"sequence":[{"event":"Order Completed"},{"event":"Page Viewed"}],"within":"1h"}""", "u-4");
        await Expect("""{"sequence":[{"event":"Page Viewed"},{"event":"Page Viewed"}],"within":"2d"}""", "u-2");
    }

    [Fact]
    public async Task computed_conditions_use_the_values_computed_traits_give()
    {
        var store = await OpenAsync();
        ComputedTraitDefinition[] computed =
        [
            new("avg_order", ComputedFunction.Average, "Order Completed", "revenue"),
            new("orders", ComputedFunction.Count, "Order Completed"),
            new("first_order_at", ComputedFunction.First, "Order Completed"),
            new("favourite", ComputedFunction.MostFrequent, "Order Completed", "product_id"),
            new("last_product", ComputedFunction.Last, "Order Completed", "product_id"),
            new("spent_7d", ComputedFunction.Sum, "Order Completed", "revenue", Within: "7d"),
        ];
        foreach (var definition in computed) { await store.SaveComputedTraitAsync(definition, CancellationToken.None); }
        var t = new DateTimeOffset(2026, 9, 20, 8, 30, 15, 123, TimeSpan.Zero).AddTicks(4560);
        await AppendMessagesAsync(store,
            // Averages exactly halfway at the 7th place round to even, as Math.Round does: 1.0000005 -> 1, 1.0000015 -> 1.000002.
            Track("u-1", null, "Order Completed", """{"revenue":1.0000005,"product_id":"p-2"}""", t),
            Track("u-1", null, "Order Completed", """{"revenue":1.0000005,"product_id":"p-1"}""", t.AddDays(1)),
            Track("u-1", null, "Order Completed", """{"revenue":1.0000005,"product_id":"p-2"}""", t.AddDays(2)),
            Track("u-2", null, "Order Completed", """{"revenue":1.0000015,"product_id":"p-3"}""", t.AddDays(8)),
            Identify("u-3", "{}"));

        async Task Expect(string definition, params string[] users) => Assert.Equal(users, await MembersAsync(store, definition));
        await Expect("""{"computed":"avg_order","op":"eq","value":1}""", "u-1");
        await Expect("""{"computed":"avg_order","op":"eq","value":1.000002}""", "u-2");
        await Expect("""{"computed":"orders","op":"eq","value":0}""", "u-3");
        await Expect("""{"computed":"orders","op":"gte","value":3}""", "u-1");
        await Expect("""{"computed":"first_order_at","op":"eq","value":"2026-09-20T08:30:15.123Z"}""", "u-1");
        await Expect("""{"computed":"first_order_at","op":"gt","value":"2026-09-25T00:00:00Z"}""", "u-2");
        await Expect("""{"computed":"favourite","op":"eq","value":"p-2"}""", "u-1");
        await Expect("""{"computed":"last_product","op":"eq","value":"p-2"}""", "u-1");
        await Expect("""{"computed":"spent_7d","op":"exists"}""", "u-2");
        await Expect("""{"computed":"spent_7d","op":"not_exists"}""", "u-1", "u-3");
        await Expect("""{"computed":"never_defined","op":"not_exists"}""", "u-1", "u-2", "u-3");
    }

    [Fact]
    public async Task segment_references_inline_the_referenced_audience_and_unknown_or_endless_ones_are_false()
    {
        var store = await OpenAsync();
        await AppendMessagesAsync(store, Identify("u-1", """{"plan":"pro"}"""), Identify("u-2", """{"plan":"free"}"""));
        var segments = new Dictionary<string, AudienceCondition>
        {
            ["pro"] = Parse("""{"trait":"plan","op":"eq","value":"pro"}"""),
            ["not_pro"] = Parse("""{"not":{"segment":"pro"}}"""),
            ["loop"] = Parse("""{"and":[{"trait":"plan","op":"exists"},{"segment":"loop"}]}"""),
        };

        Assert.Equal(["u-2"], await MembersAsync(store, """{"segment":"not_pro"}""", segments));
        Assert.Empty(await MembersAsync(store, """{"segment":"missing"}""", segments));
        Assert.Empty(await MembersAsync(store, """{"segment":"loop"}""", segments));
        Assert.Equal(["u-1", "u-2"], await MembersAsync(store, """{"not":{"segment":"loop"}}""", segments));
    }

    [Fact]
    public async Task values_names_and_paths_full_of_quotes_and_sql_are_matched_as_data_and_never_reach_the_sql_text()
    {
        const string Evil = "'); DROP TABLE events; --";
        var store = await OpenAsync();
        var name = JsonValue.Create(Evil)!.ToJsonString();
        await AppendMessagesAsync(store,
            Identify("u-1", $$"""{{{name}}:{{name}},"plan":"O'Brien \"x\"; --"}"""),
            Track("u-1", null, Evil, $$$"""{"we'ird\"key; --":{{{name}}},"a/b~c":{"d":1},"0":{"x":"y"}}""", AudienceNow.AddDays(-1)),
            Track("u-1", null, Evil, "{}", AudienceNow.AddHours(-1)),
            Identify("u-2", "{}"));
        var before = (await store.GetStatsAsync(CancellationToken.None)).Events;

        string[] definitions =
        [
            $$"""{"trait":{{name}},"op":"eq","value":{{name}}}""",
            """{"trait":"plan","op":"eq","value":"O'Brien \"x\"; --"}""",
            $$"""{"event":{{name}},"where":[{"property":"we'ird\"key; --","op":"eq","value":{{name}}}]}""",
            $$"""{"event":{{name}},"where":[{"property":"a/b~c.d","op":"eq","value":1},{"property":"0.x","op":"eq","value":"y"}]}""",
            $$"""{"sequence":[{"event":{{name}},"first":true,"where":[{"property":"we'ird\"key; --","op":"starts_with","value":"');"}]},{"event":{{name}}}],"within":"1d"}""",
            $$"""{"identifier":"user_id","op":"in","value":["u-1",{{name}}]}""",
        ];
        foreach (var definition in definitions)
        {
            Assert.Equal(["u-1"], await MembersAsync(store, definition));
            var sql = store.ExplainAudienceSql(Parse(definition), _ => null, AudienceNow).Text;
            Assert.DoesNotContain("DROP", sql, StringComparison.Ordinal);
            Assert.DoesNotContain("O'Brien", sql, StringComparison.Ordinal);
            Assert.DoesNotContain("we'ird", sql, StringComparison.Ordinal);
        }

        Assert.Equal(before, (await store.GetStatsAsync(CancellationToken.None)).Events);
    }

    [Fact]
    public async Task the_profile_state_in_sql_follows_merges_unmerges_and_is_rebuilt_when_missing()
    {
        var store = await OpenAsync();
        await AppendMessagesAsync(store,
            Track(null, "a-1", "Order Completed", "{}", AudienceNow.AddDays(-3)),
            Identify("u-1", """{"plan":"pro"}"""),
            Identify("u-1", "{}", anonymousId: "a-1"));
        const string Buyers = """{"and":[{"event":"Order Completed"},{"trait":"plan","op":"eq","value":"pro"},{"identifier":"anonymous_id","op":"exists"}]}""";
        Assert.Equal(["u-1"], await MembersAsync(store, Buyers));

        // Unmerge the anonymous id: the order goes back to a profile of its own, without the plan.
        var profile = store.Engine.Get(store.Engine.FindByIdentifier(new Identifier("user_id", "u-1"))!)!;
        var device = new Identifier("anonymous_id", "a-1");
        var separation = new IdentitySeparation(device, [.. profile.Identifiers.Where(i => i != device)], AudienceNow, "test");
        await store.ReresolveAsync(store.Engine.Fresh(separations: [separation]), apply: true, separation, CancellationToken.None);
        Assert.Empty(await MembersAsync(store, Buyers));
        Assert.Equal(["a-1"], await MembersAsync(store, """{"event":"Order Completed"}"""));

        // Emptied state tables (as the migration leaves them) are written again from the engine at the next open.
        await CloseAsync(store);
        await ExecuteSqlAsync("DELETE FROM profile_ids; DELETE FROM profile_identifiers; DELETE FROM profile_traits;");
        var reopened = await OpenAsync();
        Assert.Equal(["a-1"], await MembersAsync(reopened, """{"event":"Order Completed"}"""));
        Assert.Equal(["u-1"], await MembersAsync(reopened, """{"trait":"plan","op":"eq","value":"pro"}"""));
    }

    /// <summary>Runs SQL on this test's store location, with no store open on it.</summary>
    protected abstract Task ExecuteSqlAsync(string sql);

    private static AudienceCondition Parse(string json) =>
        AudienceDefinition.Parse(json, out var errors) ?? throw new ArgumentException(string.Join("; ", errors.Select(e => $"{e.Path}: {e.Message}")));

    /// <summary>
    /// The members in SQL, named by their user id (else anonymous id) and sorted; the in-memory evaluation must
    /// choose the same profiles.
    /// </summary>
    private static async Task<List<string>> MembersAsync(ITesseraStore store, string json, Dictionary<string, AudienceCondition>? segments = null)
    {
        segments ??= [];
        var definition = Parse(json);
        var members = await store.ListAudienceMembersAsync(definition, id => segments.GetValueOrDefault(id), AudienceNow, CancellationToken.None).ToListAsync();
        var memory = await InMemoryAsync(store, segments, AudienceNow);
        Assert.Equal(memory.Members(definition), members);
        return [.. members.Select(id => NameOf(store.Engine.Get(id, AudienceNow)!)).Order(StringComparer.Ordinal)];
    }

    private static string NameOf(ProfileView profile) =>
        profile.Identifiers.Where(i => i.Type == "user_id").Select(i => i.Value).FirstOrDefault()
        ?? profile.Identifiers.First(i => i.Type == "anonymous_id").Value;

    private async Task AppendMessagesAsync(ITesseraStore store, params CollectedEvent[] messages)
    {
        // One message per append, so each is resolved after the ones before it as separate requests would be.
        foreach (var message in messages) { await store.AppendAsync([message], CancellationToken.None); }
    }

    private CollectedEvent Identify(string userId, string traits, string? anonymousId = null, DateTimeOffset? at = null) =>
        Audience(MessageType.Identify, null, userId, anonymousId, at ?? AudienceNow.AddDays(-60), $"\"traits\":{traits}");

    private CollectedEvent Track(string? userId, string? anonymousId, string name, string properties, DateTimeOffset at) =>
        Audience(MessageType.Track, name, userId, anonymousId, at, $"\"event\":{JsonValue.Create(name)!.ToJsonString()},\"properties\":{properties}");

    private CollectedEvent Page(string userId, string name, DateTimeOffset at) =>
        Audience(MessageType.Page, name, userId, null, at, $"\"name\":{JsonValue.Create(name)!.ToJsonString()},\"properties\":{{}}");

    private CollectedEvent Audience(MessageType type, string? name, string? userId, string? anonymousId, DateTimeOffset at, string body)
    {
        var id = $"aud-{++_audienceMessages}";
        var raw = $"{{\"type\":\"{type.Name()}\",\"messageId\":\"{id}\",{IdentifierJson(userId, anonymousId)}{body}}}";
        return new CollectedEvent(id, "src_a", type, name, userId, anonymousId, null, null, at, at, null, at, raw);
    }
}
