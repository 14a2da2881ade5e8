using System.Text;
using System.Text.Json;
using Tessera.Storage.Audiences;
using Tessera.Storage.DuckDb;

namespace Tessera.Storage.Tests;

/// <summary>
/// The typed top-level properties written to <c>event_properties</c>: each name once, with the value a lookup by that
/// name gives (as the in-memory evaluation reads it), nulls left out; the text as the value reads, escapes and all,
/// though the usual member is written from the message's own bytes.
/// </summary>
public sealed class EventPropertiesTests
{
    private static (string Name, string Kind, string? Text)[] Read(string eventName, string properties) =>
        [.. ReadRows(eventName, properties).Select(r => (r.Name, r.Kind, r.Text))];

    private static List<(string Name, string Kind, string Text, decimal? Number, DateTimeOffset? Instant)> ReadRows(string eventName, string properties)
    {
        var raw = $$"""{"type":"track","event":"{{eventName}}","properties":{{properties}}}""";
        var rows = new List<(string, string, string, decimal?, DateTimeOffset?)>();
        var written = EventProperties.Write(named: true, Encoding.UTF8.GetBytes(raw), rows, static (list, in row) =>
            list.Add((Encoding.UTF8.GetString(row.Name), Encoding.UTF8.GetString(row.Value.KindUtf8), Encoding.UTF8.GetString(row.Value.Text), row.Value.Number, row.Value.Instant)));
        Assert.Equal(rows.Count, written);
        return rows;
    }

    [Fact]
    public void a_repeated_key_is_one_row_placed_first_with_the_value_a_lookup_finds_and_nulls_are_left_out()
    {
        var rows = Read("Repeated", """{"a":1,"b":"x","a":2,"c":null,"d":true}""");

        Assert.Equal([("a", "number", "2"), ("b", "string", "x"), ("d", "boolean", "true")], rows);
    }

    [Fact]
    public void rows_follow_members_that_change_from_one_event_of_a_name_to_the_next()
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

    [Fact]
    public void escaped_names_and_values_are_written_as_they_read_and_every_kind_is_typed()
    {
        var rows = ReadRows("Escapes", """{"caf\u00e9":"cr\u00e8me \"br\u00fbl\u00e9e\"","plain":"12.50","when":"2026-12-03T10:00:00Z","n":1e3,"o":{"a":[1]},"l":[true],"f":false,"empty":""}""");

        Assert.Equal(
            [
                ("café", "string", "crème \"brûlée\"", null, null),
                ("plain", "string", "12.50", 12.50m, null),
                ("when", "string", "2026-12-03T10:00:00Z", null, new DateTimeOffset(2026, 12, 3, 10, 0, 0, TimeSpan.Zero)),
                ("n", "number", "1e3", 1000m, null),
                ("o", "object", """{"a":[1]}""", null, null),
                ("l", "array", "[true]", null, null),
                ("f", "boolean", "false", null, null),
                ("empty", "string", "", null, null),
            ],
            rows);
    }

    [Fact]
    public void a_name_repeated_once_escaped_and_once_not_is_one_row()
    {
        var rows = Read("Repeated Escaped", """{"sku":"A","s\u006bu":"B","x":1}""");

        Assert.Equal([("sku", "string", "B"), ("x", "number", "1")], rows);
    }

    public static TheoryData<string> PackedCases() =>
    [
        """{"a":1,"b":"x","a":2,"c":null,"d":true}""",
        """{"caf\u00e9":"cr\u00e8me \"br\u00fbl\u00e9e\"","plain":"12.50","when":"2026-12-03T10:00:00Z","n":1e3,"o":{"a":[1]},"l":[true],"f":false,"empty":""}""",
        """{"local":"2026-12-03T10:00:00+05:30","neg":-12.345678901234,"huge":1e40,"tiny":0.0000000000001,"zero":0,"text number":" 7 "}""",
        $$"""{"{{new string('n', 200)}}":"{{new string('v', 20_000)}}","ünï":"日本"}""",
        "{" + string.Join(",", Enumerable.Range(0, 40).Select(i => $"\"p{i}\":{i}")) + ""","p3":"again"}""",
        "{}",
    ];

    /// <summary>
    /// The rows the store packs for the committer, typed from the engine's parsed message, read back as the rows typed
    /// from the message's text; each event of a chunk keeps its own rows, and an event without a name has none.
    /// </summary>
    [Theory]
    [MemberData(nameof(PackedCases))]
    public void rows_packed_for_the_committer_read_back_as_typed(string properties)
    {
        var raw = Encoding.UTF8.GetBytes($$"""{"type":"track","event":"Packed","properties":{{properties}}}""");
        var packer = new PropertyPacker();
        packer.Begin(3);
        using (var document = JsonDocument.Parse(raw))
        using (var other = JsonDocument.Parse("""{"type":"track","event":"Other","properties":{"other":1}}"""))
        {
            packer.Pack(0, named: true, document.RootElement);
            packer.Pack(1, named: false, document.RootElement);
            packer.Pack(2, named: true, other.RootElement);
        }

        var read = new List<(string, string, string, decimal?, DateTimeOffset?)>();
        foreach (var row in new PackedPropertyRows(packer.Packed(0)))
        {
            read.Add((Encoding.UTF8.GetString(row.Name), Encoding.UTF8.GetString(row.Value.KindUtf8), Encoding.UTF8.GetString(row.Value.Text), row.Value.Number, row.Value.Instant));
        }

        var typed = ReadRows("Packed", properties);
        Assert.Equal(typed, read);
        Assert.Equal(typed.Select(r => r.Instant?.Offset), read.Select(r => r.Item5?.Offset));
        Assert.Equal(properties == "{}", packer.Packed(0).IsEmpty);
        Assert.True(packer.Packed(1).IsEmpty);
        var next = new List<string>();
        foreach (var row in new PackedPropertyRows(packer.Packed(2))) { next.Add(Encoding.UTF8.GetString(row.Name)); }
        Assert.Equal(["other"], next);

        // The next chunk starts empty: an event not handed over is a mistake, not silently rows of the last chunk.
        packer.Begin(1);
        Assert.Throws<InvalidOperationException>(() => packer.Packed(0).Length);
    }
}
