using System.Text.Json;
using Tessera.Core.Collection;
using Tessera.Storage.Events;

namespace Tessera.Cli.Import;

/// <summary>
/// Where every import's rows go: valid messages to the store in batches (with the store's dedup), refused rows to
/// the rejected file as JSON lines with the line number, the field (or column) and the reason.
/// </summary>
internal sealed class ImportSink(IEventStore store, TextWriter rejectedOut, int batchSize)
{
    private readonly List<CollectedEvent> _batch = new(batchSize);

    public long Imported { get; private set; }
    public long Rejected { get; private set; }
    public long Duplicates { get; private set; }

    public async Task AddAsync(CollectedEvent message, CancellationToken cancellationToken)
    {
        _batch.Add(message);
        if (_batch.Count >= batchSize) { await FlushAsync(cancellationToken); }
    }

    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_batch.Count == 0) { return; }
        var result = await store.AppendAsync(_batch, cancellationToken);
        Imported += result.Stored;
        Duplicates += result.Duplicates;
        _batch.Clear();
    }

    public async Task RejectAsync(long line, string field, string reason, string raw)
    {
        Rejected++;
        await rejectedOut.WriteLineAsync(JsonSerializer.Serialize(new { line, field, reason, raw }));
    }
}
