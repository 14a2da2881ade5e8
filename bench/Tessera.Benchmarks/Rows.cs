using System.Text.Json;
using Tessera.Core.Collection;
using Tessera.LoadGen;

namespace Tessera.Benchmarks;

/// <summary>The load generator's realistic messages, as batch bytes and as validated rows.</summary>
internal static class Rows
{
    public const string SourceId = "src_bench";

    public static byte[] Batch(int size, int seed = 7)
    {
        var factory = new MessageFactory(size, templates: 1, seed);
        var buffer = new byte[factory.MaxBatchBytes];
        var length = factory.Write(0, buffer);
        return buffer[..length];
    }

    /// <summary><paramref name="count"/> validated events; <paramref name="idPrefix"/> makes their messageIds unique to one use.</summary>
    public static List<CollectedEvent> Events(int count, string idPrefix)
    {
        var events = new List<CollectedEvent>(count);
        var now = DateTimeOffset.UtcNow;
        var factory = new MessageFactory(100, templates: 8, seed: 11);
        var buffer = new byte[factory.MaxBatchBytes];
        for (var b = 0; events.Count < count; b++)
        {
            var length = factory.Write(b, buffer);
            using var document = JsonDocument.Parse(buffer.AsMemory(0, length));
            foreach (var message in document.RootElement.GetProperty("batch").EnumerateArray())
            {
                if (!MessageValidator.TryValidate(message, null, SourceId, now, null, out var collected, out var rejection))
                {
                    throw new InvalidOperationException($"{rejection!.Field}: {rejection.Reason}");
                }

                events.Add(collected! with { MessageId = $"{idPrefix}-{events.Count}" });
                if (events.Count == count) { break; }
            }
        }

        return events;
    }
}
