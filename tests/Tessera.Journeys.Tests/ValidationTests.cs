using Tessera.Activation.Tests;

namespace Tessera.Journeys.Tests;

/// <summary>Malformed journeys are refused with problem+json naming the field, before anything is stored.</summary>
public sealed class ValidationTests
{
    [Fact]
    public async Task malformed_journeys_are_refused_naming_the_field()
    {
        var clock = Journeys.NewClock();
        await using var receiver = await Receiver.StartAsync();
        await using var server = await Journeys.StartAsync(clock);
        var webhook = await server.JourneyWebhookAsync(receiver);
        var segment = await server.CreateSegmentAsync("Buyers", """{"event": "Order Completed"}""");
        string Journey(string steps, string entry = """{"event": "Signed Up"}""", string extra = "") =>
            $$$"""{"name": "J", "entry": {{{entry}}}, "steps": {{{steps}}}{{{extra}}}}""";

        await server.RefusedAsync("""{"entry": {"event": "Signed Up"}, "steps": [{"type": "exit"}]}""", "name");
        await server.RefusedAsync("""{"name": "J", "steps": [{"type": "exit"}]}""", "entry");
        await server.RefusedAsync(Journey("""[{"type": "exit"}]""", entry: """{"segment": "seg_nope"}"""), "entry.segment", "no audience 'seg_nope'");
        await server.RefusedAsync(Journey("""[{"type": "exit"}]""", entry: """{"event": "Viewed", "where": [{"property": "price", "op": "bigger", "value": 3}]}"""), "entry.where[0].op");
        await server.RefusedAsync(Journey("[]"), "steps");
        await server.RefusedAsync(Journey("""[{"type": "wait", "duration": "1h"}, {"type": "teleport"}]"""), "steps[1].type");
        await server.RefusedAsync(Journey("""[{"type": "wait"}]"""), "steps[0].duration");
        await server.RefusedAsync(Journey("""
            [{"type": "wait", "duration": "1h"}, {"type": "wait", "duration": "2h"},
             {"type": "wait_for_event", "event": "Order Completed", "timeout": "soon", "onEvent": "exit", "onTimeout": "exit"}]
            """), "steps[2].timeout", "'soon' is not a duration");
        await server.RefusedAsync(Journey("""[{"type": "send", "destination": "dst_missing"}]"""), "steps[0].destination", "no destination 'dst_missing'");
        await server.RefusedAsync(Journey("""[{"id": "a", "type": "wait", "duration": "1h", "next": "b"}, {"id": "b", "type": "wait", "duration": "1h", "next": "a"}]"""),
            "steps[1].next", "makes a loop");
        await server.RefusedAsync(Journey("""[{"type": "wait", "duration": "1h", "next": "nowhere"}]"""), "steps[0].next", "no step 'nowhere'");
        await server.RefusedAsync(Journey("""[{"id": "x", "type": "exit"}, {"id": "x", "type": "exit"}]"""), "steps[1].id");
        await server.RefusedAsync(Journey("""[{"type": "branch", "condition": {"trait": "plan", "op": "eq", "value": "pro"}}]"""), "steps[0].else");
        await server.RefusedAsync(Journey("""[{"type": "branch", "condition": {"trait": "plan", "op": "near"}, "else": "exit"}]"""), "steps[0].condition.op");
        await server.RefusedAsync(Journey($$$"""[{"type": "branch", "condition": {"event": "Page Viewed", "within": "7d"}, "else": "exit"}]"""), "steps[0].condition",
            "no audience reads");
        await server.RefusedAsync(Journey("""[{"type": "exit"}]""", extra: """, "reentry": {"allowed": false, "after": "3d"}"""), "reentry.after");
        await server.RefusedAsync(Journey("""[{"type": "exit"}]""", extra: """, "exit": [{"leftSegment": "seg_gone"}]"""), "exit[0].leftSegment");
        await server.RefusedAsync(Journey("""[{"type": "exit"}]""", extra: """, "status": "running" """), "status");
        await server.RefusedAsync(Journey("""[{"type": "exit", "colour": "red"}]"""), "steps[0].colour");

        // The same shapes, right, are accepted; the defaults are written out.
        var id = await server.CreateJourneyAsync(Journey($$$"""
            [{"type": "wait_for_event", "event": "Order Completed", "timeout": "1h", "onEvent": "exit"},
             {"type": "branch", "condition": {"segment": "{{{segment}}}"}, "else": "exit"},
             {"type": "send", "destination": "{{{webhook}}}"}]
            """, extra: """, "status": "draft" """));
        var saved = await server.GetObjectAsync($"api/journeys/{id}");
        Assert.Equal("draft", saved["status"]!.GetValue<string>());
        Assert.Equal(1, saved["version"]!.GetValue<int>());
        Assert.False(saved["reentry"]!["allowed"]!.GetValue<bool>());
        Assert.Equal("step_1", saved["steps"]![0]!["id"]!.GetValue<string>());
        Assert.Equal("step_2", saved["steps"]![0]!["onTimeout"]!.GetValue<string>());
        Assert.Equal("step_3", saved["steps"]![1]!["then"]!.GetValue<string>());
        Assert.Equal("exit", saved["steps"]![2]!["next"]!.GetValue<string>());
    }
}
