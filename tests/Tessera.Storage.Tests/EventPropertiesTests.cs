using Tessera.Core.Collection;
using Tessera.Storage.Audiences;

namespace Tessera.Storage.Tests;

/// <summary>
/// The typed top-level properties written to <c>event_properties</c>: each name once, with the value a lookup by that
/// name gives (as the in-memory evaluation reads it), nulls left out; names cached per event name stay right when
/// the next event of that name carries other members.
/// </summary>
public sealed class EventPropertiesTests
{
    private static (string Name, string Kind, string? Text)[] Read(string eventName, string properties)
    {
        var raw = $$"""{"type":"track","event":"{{eventName}}","properties":{{properties}}}""";
        var message = new CollectedEvent("m-1", "src", MessageType.Track, eventName, "u-1", null, null, null, DateTimeOffset.UnixEpoch, null, null, DateTimeOffset.UnixEpoch, raw);
        return [.. EventProperties.Of(message).Select(p => (p.Name, p.Value.Kind, p.Value.Text))];
    }

    [Fact]
    public void a_repeated_key_is_one_row_placed_first_with_the_value_a_lookup_finds_and_nulls_are_left_out()
    {
        var rows = Read("Repeated", """{"a":1,"b":"x","a":2,"c":null,"d":true}""");

        Assert.Equal([("a", "number", "2"), ("b", "string", "x"), ("d", "boolean", "true")], rows);
    }

    [Fact]
    public void the_names_cached_for_an_event_name_follow_members_that_change_from_one_event_to_the_next()
    {
        var first = Read("Shape Changes", """{"sku":"A-1","price":10}""");
        var same = Read("Shape Changes", """{"sku":"B-2","price":12}""");
        var other = Read("Shape Changes", """{"price":5,"sku":"C-3","coupon":"X"}""");
        var fewer = Read("Shape Changes", """{"price":7}""");
        var none = Read("Shape Changes", "{}");

        Assert.Equal([("sku", "string", "A-1"), ("price", "number", "10")], first);
        Assert.Equal([("sku", "string", "B-2"), ("price", "number", "12")], same);
        Assert.Equal([("price", "number", "5"), ("sku", "string", "C-3"), ("coupon", "string", "X")], other);
        Assert.Equal([("price", "number", "7")], fewer);
        Assert.Empty(none);
    }

    [Fact]
    public void many_members_with_a_repeat_among_them_are_each_kept_once()
    {
        var members = string.Join(",", Enumerable.Range(0, 40).Select(i => $"\"p{i}\":{i}"));
        var rows = Read("Wide", $$"""{{{members}},"p3":"again"}""");

        Assert.Equal(40, rows.Length);
        Assert.Equal(("p3", "string", "again"), rows[3]);
    }
}
