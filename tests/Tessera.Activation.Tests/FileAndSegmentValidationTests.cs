using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Activation.Tests;

/// <summary>File and Segment destinations are checked at the edge: every refusal is problem+json naming the field; secrets stay unread.</summary>
public sealed class FileAndSegmentValidationTests
{
    [Fact]
    public async Task bad_file_and_segment_destinations_are_refused_naming_the_field()
    {
        await using var server = await Activation.StartAsync();
        var seg = await server.CreateSegmentAsync("All", """{"identifier":"user_id","op":"exists"}""");
        var dir = TempDirectory.Create("validation");
        var blocker = Path.Combine(dir, "a-file");
        await System.IO.File.WriteAllTextAsync(blocker, "not a directory");
        string File(string extra) => $$$"""{"type":"file","segments":["{{{seg}}}"]{{{extra}}}}""";
        (string Json, string Field)[] cases =
        [
            (File(""), "directory"),
            ("""{"type":"file","directory":"/tmp"}""", "segments"),
            (File(""","directory":"relative/path" """), "directory"),
            (File($$$""","directory":"{{{blocker}}}/sub" """), "directory"),
            (File($$$""","directory":"{{{dir}}}","format":"xlsx" """), "format"),
            (File($$$""","directory":"{{{dir}}}","schedule":"hourly" """), "schedule"),
            (File($$$""","directory":"{{{dir}}}","schedule":{} """), "schedule"),
            (File($$$""","directory":"{{{dir}}}","schedule":{"every":"often"}"""), "schedule.every"),
            (File($$$""","directory":"{{{dir}}}","schedule":{"at":"25:00"}"""), "schedule.at"),
            (File($$$""","directory":"{{{dir}}}","schedule":{"at":["03:00","3pm"]}"""), "schedule.at[1]"),
            (File($$$""","directory":"{{{dir}}}","keep":0"""), "keep"),
            (File($$$""","directory":"{{{dir}}}","traits":["plan",7]"""), "traits[1]"),
            (File($$$""","directory":"{{{dir}}}","includeChanges":"yes" """), "includeChanges"),
            ($$$"""{"type":"file","segments":["{{{seg}}}"],"directory":"{{{dir}}}","where":[{"property":"x","op":"exists"}]}""", "where"),
            ("""{"type":"segment","writeKey":"k","events":["A"]}""", "url"),
            ("""{"type":"segment","url":"api.segment.io","writeKey":"k","events":["A"]}""", "url"),
            ("""{"type":"segment","url":"https://api.segment.io?x=1","writeKey":"k","events":["A"]}""", "url"),
            ("""{"type":"segment","url":"https://api.segment.io","events":["A"]}""", "writeKey"),
            ("""{"type":"segment","url":"https://api.segment.io","writeKey":"has space","events":["A"]}""", "writeKey"),
            ("""{"type":"segment","url":"https://api.segment.io","writeKey":"a:b","events":["A"]}""", "writeKey"),
            ("""{"type":"segment","url":"https://api.segment.io","writeKey":"k","events":["A"],"batching":{"maxSize":5000}}""", "batching.maxSize"),
            ("""{"type":"segment","url":"https://api.segment.io","writeKey":"k"}""", "segments"),
        ];
        foreach (var (json, field) in cases)
        {
            var response = await server.Admin.PostAsync("api/destinations", Activation.Json(json));
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{json}: {(int)response.StatusCode}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
            var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
            Assert.True(field == problem["field"]!.GetValue<string>(), $"{json}: field {problem["field"]}, expected {field} ({problem["detail"]})");
        }

        Assert.Empty((await server.Admin.GetFromJsonAsync<JsonArray>("api/destinations"))!);
    }

    [Fact]
    public async Task file_and_segment_destinations_read_back_their_settings_with_defaults_and_never_the_write_key()
    {
        await using var server = await Activation.StartAsync();
        var seg = await server.CreateSegmentAsync("All", """{"identifier":"user_id","op":"exists"}""");
        var dir = Path.Combine(TempDirectory.Create("settings"), "created-on-save");

        var file = await server.GetObjectAsync($"api/destinations/{await server.CreateDestinationAsync($$$"""{"type":"file","segments":["{{{seg}}}"],"directory":"{{{dir}}}"}""")}");
        Assert.True(Directory.Exists(dir));
        Assert.Equal("csv", file["format"]!.GetValue<string>());
        Assert.Equal("1d", file["schedule"]!["every"]!.GetValue<string>());
        Assert.Equal(dir, file["directory"]!.GetValue<string>());
        Assert.False(file["includeChanges"]!.GetValue<bool>());
        Assert.Null(file["keep"]);
        Assert.Equal($"csv files in {dir}", file["name"]!.GetValue<string>());

        var id = await server.CreateDestinationAsync($$$"""{"type":"segment","url":"https://api.segment.io/v1/batch","writeKey":"secret-write-key","segments":["{{{seg}}}"]}""");
        var forward = await server.GetObjectAsync($"api/destinations/{id}");
        Assert.Equal("https://api.segment.io", forward["url"]!.GetValue<string>());
        Assert.True(forward["writeKeySet"]!.GetValue<bool>());
        Assert.True(forward["batching"]!["enabled"]!.GetValue<bool>());
        Assert.DoesNotContain("secret-write-key", forward.ToJsonString(), StringComparison.Ordinal);

        // A PUT without the write key keeps it; batching false sends one delivery a request.
        var changed = await server.Admin.PutAsync($"api/destinations/{id}", Activation.Json($$$"""{"type":"segment","url":"https://events.example.com","segments":["{{{seg}}}"],"batching":false}"""));
        Assert.True(changed.IsSuccessStatusCode, await changed.Content.ReadAsStringAsync());
        var after = (await changed.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.True(after["writeKeySet"]!.GetValue<bool>());
        Assert.False(after["batching"]!["enabled"]!.GetValue<bool>());
    }
}
