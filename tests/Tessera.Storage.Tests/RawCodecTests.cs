using System.Text;
using Tessera.Core.Collection;
using Tessera.Storage.DuckDb;

namespace Tessera.Storage.Tests;

/// <summary>The raw JSON's stored form in the embedded store: plain until a dictionary is trained, zstd with it after.</summary>
public sealed class RawCodecTests
{
    private static string Message(int i) =>
        "{\"type\":\"track\",\"messageId\":\"m-" + i + "\",\"userId\":\"user_" + (i % 97) + "\",\"event\":\"Product Viewed\"," +
        "\"properties\":{\"product_id\":\"prod_" + i + "\",\"price\":" + (i % 50) + ".99,\"name\":\"Linen shirt \u00e9t\u00e9 " + i + "\",\"currency\":\"EUR\"}," +
        "\"context\":{\"library\":{\"name\":\"analytics.js\",\"version\":\"npm:next-1.74.0\"},\"locale\":\"fr-FR\",\"userAgent\":\"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)\"}}";

    [Fact]
    public async Task messages_are_kept_as_text_until_a_dictionary_is_trained_then_compressed_and_both_decode_to_the_same_bytes()
    {
        using var codec = new RawCodec(samples: 50, every: 1_000_000);
        codec.Load([], lastSeq: 0);
        var stored = new List<(string Text, byte[] Value)>();
        for (var seq = 1; seq <= 50; seq++) { stored.Add((Message(seq), codec.Encode(new RawJson(Message(seq)), seq))); }
        Assert.All(stored, s => Assert.Equal(Encoding.UTF8.GetBytes(s.Text), s.Value));

        await codec.TrainingDone;
        var dictionary = codec.TakeTrained(firstSeq: 51);
        Assert.NotNull(dictionary);
        Assert.Equal(1, dictionary.Id);
        Assert.Equal(51, dictionary.FirstSeq);
        Assert.Equal(50, dictionary.Samples);
        for (var seq = 51; seq <= 300; seq++) { stored.Add((Message(seq), codec.Encode(new RawJson(Message(seq)), seq))); }

        var compressed = stored.Skip(50).ToList();
        Assert.All(compressed, s => Assert.Equal(RawCodec.Compressed, s.Value[0]));
        Assert.True(compressed.Average(s => s.Value.Length) < compressed.Average(s => Encoding.UTF8.GetByteCount(s.Text)) / 3.0,
            $"compressed {compressed.Average(s => s.Value.Length):F0} B against {compressed.Average(s => Encoding.UTF8.GetByteCount(s.Text)):F0} B of text");
        Assert.All(stored, s => Assert.Equal(Encoding.UTF8.GetBytes(s.Text), codec.Decode(s.Value)));
        Assert.All(stored, s => Assert.Equal(s.Text, codec.DecodeToString(s.Value)));

        // Another codec that loads the same dictionary (a reopened store) reads them, from several threads at once.
        using var reopened = new RawCodec(samples: 50, every: 1_000_000);
        reopened.Load([dictionary], lastSeq: 300);
        Parallel.ForEach(stored, new ParallelOptions { MaxDegreeOfParallelism = 4 }, s => Assert.Equal(s.Text, reopened.DecodeToString(s.Value)));
    }

    [Fact]
    public async Task a_new_dictionary_is_trained_every_so_many_events_and_rows_of_each_stay_readable()
    {
        using var codec = new RawCodec(samples: 20, every: 100);
        codec.Load([], lastSeq: 0);
        var stored = new List<(string Text, byte[] Value)>();
        var dictionaries = new List<RawDictionary>();
        for (var seq = 1; seq <= 400; seq++)
        {
            if (seq % 10 == 0)
            {
                await codec.TrainingDone;
                if (codec.TakeTrained(seq) is { } d) { dictionaries.Add(d); }
            }

            stored.Add((Message(seq), codec.Encode(new RawJson(Message(seq)), seq)));
        }

        Assert.True(dictionaries.Count >= 3, $"{dictionaries.Count} dictionaries over 400 events, one every 100 expected");
        Assert.Equal(Enumerable.Range(1, dictionaries.Count), dictionaries.Select(d => d.Id));
        Assert.All(dictionaries.Zip(dictionaries.Skip(1)), p => Assert.True(p.Second.FirstSeq - p.First.FirstSeq >= 100));
        using var reader = new RawCodec(samples: 20, every: 100);
        reader.Load(dictionaries, lastSeq: 400);
        Assert.All(stored, s => Assert.Equal(s.Text, reader.DecodeToString(s.Value)));
    }

    [Fact]
    public async Task a_dictionary_missing_from_the_store_is_an_error_that_names_it_and_a_reload_forgets_one_never_committed()
    {
        using var codec = new RawCodec(samples: 20, every: 1_000_000);
        codec.Load([], lastSeq: 0);
        for (var seq = 1; seq <= 20; seq++) { codec.Encode(new RawJson(Message(seq)), seq); }
        await codec.TrainingDone;
        var dictionary = codec.TakeTrained(21)!;
        var value = codec.Encode(new RawJson(Message(21)), 21);

        using var other = new RawCodec(samples: 20, every: 1_000_000);
        other.Load([], lastSeq: 21);
        var error = Assert.Throws<StoreException>(() => other.Decode(value));
        Assert.Contains("dictionary 1", error.Message, StringComparison.Ordinal);

        // The commit that held the dictionary failed: reloaded from the file, the codec is back to plain text, and the
        // next dictionary it trains takes the same number.
        codec.Load([], lastSeq: 20);
        Assert.Equal(0, codec.DictionaryCount);
        Assert.Throws<StoreException>(() => codec.Decode(value));
        for (var seq = 21; seq <= 40; seq++) { Assert.Equal(Encoding.UTF8.GetBytes(Message(seq)), codec.Encode(new RawJson(Message(seq)), seq)); }
        await codec.TrainingDone;
        var again = codec.TakeTrained(41);
        Assert.NotNull(again);
        Assert.Equal(dictionary.Id, again.Id);
        Assert.Equal(Message(41), codec.DecodeToString(codec.Encode(new RawJson(Message(41)), 41)));
    }

    // A dictionary of 1,024 bytes and a message compressed with it by ZstdSharp 0.8.8 (level 1), the managed port the
    // store used until 2026-12-07: rows stored then are read by the native zstd (ZstdNet) the store uses now.
    private const string FormerDictionary =
        "N6Qw7GpHagIUEOgK0wEAAAAAwIpySylTSgycExJjBQAAAABmQ8EJAAAEAAAAgAIHEAAAHrI8CAAAAADkyBwAAAAAAAAAAAAOAAAAAIAJoE4AAAAAABSLGNYaAAAAAAAAAAAAAAAAAAAB" +
        "AAAABAAAAAgAAAAiVmlld2VkIDQiLCJwcm9wZXJ0aWVzIjp7Im4iOjIwODMsInBhdGgiOiIvcC8zIn0sImNvbnRleHQiOnsibGlicmFyeSI6eyJuYW1lIjoiYW5hbHl0aWNzLW5vZGUi" +
        "fX19eyJ0eXBlIjoidHJhY2siLCJldmVudCI6IlZpZXdlZCA1IiwicHJvcGVydGllcyI6eyJuIjoyMDg0LCJwYXRoIjoiL3AvNCJ9LCJjb250ZXh0Ijp7ImxpYnJhcnkiOnsibmFtZSI6" +
        "ImFuYWx5dGljcy1ub2RlIn19fXsidHlwZSI6InRyYWNrIiwiZXZlbnQiOiJWaWV3ZWQgNiIsInByb3BlcnRpZXMiOnsibiI6MjA4NSwicGF0aCI6Ii9wLzUifSwiY29udGV4dCI6eyJs" +
        "aWJyYXJ5Ijp7Im5hbWUiOiJhbmFseXRpY3Mtbm9kZSJ9fX17InR5cGUiOiJ0cmFjayIsImV2ZW50IjoiVmlld2VkIDAiLCJwcm9wZXJ0aWVzIjp7Im4iOjIwODYsInBhdGgiOiIvcC82" +
        "In0sImNvbnRleHQiOnsibGlicmFyeSI6eyJuYW1lIjoiYW5hbHl0aWNzLW5vZGUifX19eyJ0eXBlIjoidHJhY2siLCJldmVudCI6IlZpLCJldmVudCI6IlZpZXdlZCAxIiwicHJvcGVy" +
        "dGllcyI6eyJuIjo4LCJwYXRoIjoiL3AvOCJ9LCJjb250ZXh0Ijp7ImxpYnJhcnkiOnsibmFtZSI6ImFuYWx5dGljcy1ub2RlIn19fXsidHlwZSI6InRyYWNrIiwiZXZlbnQiOiJWaWV3" +
        "ZWQgMiIsInByb3BlcnRpZXMiOnsibiI6OSwicGF0aCI6Ii9wLzkifSwiY29udGV4dCI6eyJsaWJyYXJ5Ijp7Im5hbWUiOiJhbmFseXRpY3Mtbm9kZSJ9fX17InR5cGUiOiJ0cmFjayIs" +
        "ImV2ZW50IjoiVmlld2VkIDMiLCJwcm9wZXJ0aWVzIjp7Im4iOjEwLCJwYXRoIjoiL3AvMTAifSwiY29udGV4dCI6eyJsaWJyYXJ5Ijp7Im5hbWUiOiJhbmFseXRpY3Mtbm9kZSJ9fX17" +
        "InR5cGUiOiJ0cmFjayIsImV2ZW50IjoiVmlld2VkIDQiLCJwcm9wZXJ0aWVzIjp7Im4iOjExLCJwYXRoIjoiL3AvMTEifSwiY29udGV4dA==";
    private const string FormerFrame = "KLUv/SNqR2oChgUBAIgzIiwidXNlcklkIjoidS0xNwT82YkgHsYZd9NYJ2oB";

    [Fact]
    public void rows_compressed_by_the_former_managed_zstd_decode_and_a_damaged_frame_is_an_error_that_names_its_dictionary()
    {
        using var codec = new RawCodec(samples: 50, every: 1_000_000);
        codec.Load([new RawDictionary(1, 1, DateTimeOffset.UnixEpoch, 3_000, Convert.FromBase64String(FormerDictionary))], lastSeq: 10);
        byte[] value = [RawCodec.Compressed, 1, 0, 0, 0, .. Convert.FromBase64String(FormerFrame)];
        Assert.Equal(
            """{"type":"track","event":"Viewed 3","userId":"u-1","properties":{"n":17,"path":"/p/4"},"context":{"library":{"name":"analytics-node"}}}""",
            codec.DecodeToString(value));

        var damaged = value.ToArray();
        damaged[^3] ^= 0x55;
        var error = Assert.Throws<StoreException>(() => codec.Decode(damaged));
        Assert.Contains("dictionary 1", error.Message, StringComparison.Ordinal);
        var cut = Assert.Throws<StoreException>(() => codec.Decode(value.AsSpan(0, 8)));
        Assert.Contains("dictionary 1", cut.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task dictionaries_are_trained_without_the_ids_ip_and_traits_of_the_sampled_messages()
    {
        const string Secret = "ada.lovelace.secret@example.com";
        string Identify(int i) =>
            "{\"type\":\"identify\",\"messageId\":\"msg-secret-" + (i % 3) + "\",\"userId\":\"user-secret-4711\",\"anonymousId\":\"anon-secret-0815\"," +
            "\"traits\":{\"email\":\"" + Secret + "\",\"name\":\"Ada Lovelace Secret\"},\"context\":{\"ip\":\"203.0.113.77\",\"traits\":{\"phone\":\"+441632960961\"}," +
            "\"library\":{\"name\":\"analytics.js\",\"version\":\"npm:next-1.74.0\"}},\"properties\":{\"plan\":\"pro\",\"n\":" + i + "}}";
        var stripped = Encoding.UTF8.GetString(RawCodec.WithoutIdentities(Encoding.UTF8.GetBytes(Identify(1))));
        Assert.Equal(
            """{"type":"identify","messageId":"","userId":"","anonymousId":"","traits":{},"context":{"ip":"","traits":{},"library":{"name":"analytics.js","version":"npm:next-1.74.0"}},"properties":{"plan":"pro","n":1}}""",
            stripped);

        using var codec = new RawCodec(samples: 200, every: 1_000_000);
        codec.Load([], lastSeq: 0);
        for (var seq = 1; seq <= 200; seq++) { codec.Encode(new RawJson(Identify(seq)), seq); }
        await codec.TrainingDone;
        var dictionary = codec.TakeTrained(201);
        Assert.NotNull(dictionary);
        var text = Encoding.Latin1.GetString(dictionary.Bytes);
        foreach (var secret in new[] { "secret", "4711", "0815", "Lovelace", "203.0.113", "1632960961" })
        {
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }

        // What is not personal is learnt: the library's name, common to every sample.
        Assert.Contains("analytics.js", text, StringComparison.Ordinal);
        var value = codec.Encode(new RawJson(Identify(201)), 201);
        Assert.Equal(Identify(201), codec.DecodeToString(value));
    }
}
