using System.Text.Json.Nodes;
using Tessera.Core.Profiles;
using Tessera.Testing;

namespace Tessera.Profiles.Tests;

/// <summary>Trait values of every JSON kind, held compactly by the engine (<see cref="TraitJson"/>), read back as they were sent.</summary>
public sealed class TraitValueTests
{
    private const string Traits = """
        {"plan":"pro","city":"Zürich \"Altstadt\"\n","vip":true,"churned":false,"score":12.5,"visits":42,
         "big":12345678901234567890,"address":{"street":"Main","no":[1,2]},"tags":["a","b"],"empty":""}
        """;

    [Fact]
    public async Task trait_values_of_every_json_kind_read_back_as_sent_before_and_after_a_restart()
    {
        var dir = TempDirectory.Create("trait-kinds");
        await using (var server = await TestServer.StartAsync(dir))
        {
            await server.SendAsync("identify", $$"""{"userId":"kinds-1","traits":{{Traits}},"timestamp":"2026-01-01T00:00:00Z"}""");
            AssertSameTraits((await server.ProfileByAsync("user_id:kinds-1"))!["traits"]);
        }

        // Loaded from the store this time (TraitJson.Parse), not from the message.
        await using (var server = await TestServer.StartAsync(dir))
        {
            AssertSameTraits((await server.ProfileByAsync("user_id:kinds-1"))!["traits"]);
        }
    }

    [Fact]
    public void strings_and_booleans_are_held_without_a_json_document_and_equal_what_parsing_gives()
    {
        foreach (var (name, sent) in JsonNode.Parse(Traits)!.AsObject())
        {
            var held = TraitJson.Parse(sent!.ToJsonString());
            Assert.True(JsonNode.DeepEquals(sent, held), name);
            Assert.Equal(sent.GetValueKind(), held!.GetValueKind());
            // A value over a JsonElement keeps a JsonDocument of its own (about 250 bytes for a short string).
            var kind = sent.GetValueKind();
            if (kind is System.Text.Json.JsonValueKind.String or System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False)
            {
                Assert.False(held.AsValue().TryGetValue<System.Text.Json.JsonElement>(out _), name);
            }
        }

        Assert.Null(TraitJson.Parse("null"));
    }

    private static void AssertSameTraits(JsonNode? read)
    {
        var sent = JsonNode.Parse(Traits)!.AsObject();
        Assert.NotNull(read);
        foreach (var (name, value) in sent)
        {
            Assert.True(JsonNode.DeepEquals(value, read[name]), $"{name}: sent {value?.ToJsonString()}, read {read[name]?.ToJsonString()}");
        }
    }
}
