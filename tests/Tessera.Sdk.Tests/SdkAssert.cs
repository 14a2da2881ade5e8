using System.Globalization;
using System.Text.Json.Nodes;

namespace Tessera.Sdk.Tests;

/// <summary>Assertions shared by the SDK tests: what was sent against what was stored.</summary>
public static class SdkAssert
{
    // Tessera sets these itself (corrected time, receive time) or reads them in their own right below.
    private static readonly HashSet<string> TimeFields = ["timestamp", "originalTimestamp", "sentAt"];

    /// <summary>Tessera answered 2xx to every request the SDK made, and the SDK reported no error.</summary>
    public static void EveryRequestSucceeded(SdkRun run)
    {
        Assert.True(run.Report.Requests.Count > 0, $"the SDK made no request to Tessera. SDK report: {run.Report}");
        foreach (var request in run.Report.Requests)
        {
            var status = (int?)request["response"]?["status"];
            Assert.True(status is >= 200 and < 300, $"{request["method"]} {request["url"]} was answered {status}. SDK report: {run.Report}");
        }

        Assert.True(run.Report.Errors.Count == 0, $"the SDK reported errors: {string.Join("; ", run.Report.Errors)}");
    }

    /// <summary>
    /// Every message the SDK sent is stored once, under its messageId, with every field it was sent with (the
    /// write key excepted: Tessera does not keep credentials), and nothing else is stored.
    /// </summary>
    public static void EveryMessageStoredAsSent(SdkRun run, int expectedMessages)
    {
        var sent = run.Report.Sent;
        Assert.True(sent.Count == expectedMessages, $"expected the SDK to send {expectedMessages} messages, it sent {sent.Count}. SDK report: {run.Report}");
        Assert.True(run.Stored.Count == sent.Count, $"the SDK sent {sent.Count} messages and Tessera stored {run.Stored.Count}");

        foreach (var message in sent)
        {
            var stored = run.StoredMessage(message.MessageId);
            foreach (var (name, value) in message.Message)
            {
                if (name == "writeKey" || TimeFields.Contains(name)) { continue; }
                Assert.True(JsonNode.DeepEquals(value, stored[name]),
                    $"{message.Type} {message.MessageId}: field '{name}' was sent as {Show(value)} and stored as {Show(stored[name])}");
            }

            Assert.False(stored.ContainsKey("writeKey"), $"{message.Type} {message.MessageId}: the write key was stored with the message");
        }
    }

    /// <summary>
    /// Segment's time rules on every stored message: originalTimestamp is the device time the SDK sent, sentAt the
    /// send time (the message's or its batch's), receivedAt Tessera's clock during the run, and timestamp the device
    /// time corrected for clock skew, which here (one machine, one clock) is within seconds of the device time, plus
    /// the time the message spent in transit.
    /// </summary>
    public static void EveryMessageHasSegmentTimestamps(SdkRun run)
    {
        foreach (var message in run.Report.Sent)
        {
            var stored = run.StoredMessage(message.MessageId);
            var what = $"{message.Type} {message.MessageId}";
            var deviceTime = Time((string?)message.Message["originalTimestamp"] ?? (string?)message.Message["timestamp"], $"{what}: timestamp as sent");
            Assert.Equal(deviceTime, Time((string?)stored["originalTimestamp"], $"{what}: stored originalTimestamp"));
            Assert.Equal(Time(message.SentAt, $"{what}: sentAt as sent"), Time((string?)stored["sentAt"], $"{what}: stored sentAt"));

            var receivedAt = Time((string?)stored["receivedAt"], $"{what}: stored receivedAt");
            Assert.InRange(receivedAt, run.StartedAt.AddSeconds(-1), run.FinishedAt.AddSeconds(1));

            // Skew correction moves the device time by the time in transit (receivedAt - sentAt), which a loaded
            // machine stretches to seconds: allow that on top of the few seconds the SDK holds a message before sending.
            var timestamp = Time((string?)stored["timestamp"], $"{what}: stored timestamp");
            var transit = (receivedAt - Time(message.SentAt, $"{what}: sentAt as sent")).Duration();
            Assert.True((timestamp - deviceTime).Duration() < TimeSpan.FromSeconds(5) + transit,
                $"{what}: stored timestamp {timestamp:O} is not the device time {deviceTime:O} corrected for skew");
        }
    }

    /// <summary><paramref name="actual"/> is exactly the JSON <paramref name="expectedJson"/>.</summary>
    public static void Json(string expectedJson, JsonNode? actual, string what)
    {
        var expected = JsonNode.Parse(expectedJson);
        Assert.True(JsonNode.DeepEquals(expected, actual), $"{what}: expected {Show(expected)}, got {Show(actual)}");
    }

    public static DateTimeOffset Time(string? iso, string what)
    {
        Assert.True(iso is not null, $"{what} is missing");
        return DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
    }

    private static string Show(JsonNode? node) => node?.ToJsonString() ?? "nothing";
}
