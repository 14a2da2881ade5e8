using System.Globalization;
using Tessera.Core.Collection;
using Tessera.Storage.Events;

namespace Tessera.Storage.Journal;

/// <summary>How far one journal (named by its id) has been indexed: every record that ends at or before <see cref="Position"/> is in the store.</summary>
public readonly record struct JournalMark(string JournalId, long Position)
{
    /// <summary>The settings row that holds the position; one per journal, so processes sharing a store keep theirs apart.</summary>
    public static string SettingKey(string journalId) => "journal_position:" + journalId;

    public static long? Parse(string? value) =>
        long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var position) ? position : null;

    public string Value => Position.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// What the journal's indexer needs from a store: the events appended together with the journal position they
/// bring the store to, in one commit, and that position read back at start. Because both land in the same commit,
/// a restart replays the journal from exactly where the store stopped; the store's dedup makes any overlap harmless.
/// </summary>
public interface IJournalIndexStore
{
    /// <summary>The position recorded for <paramref name="journalId"/>; null when this store never indexed that journal.</summary>
    Task<long?> GetJournalPositionAsync(string journalId, CancellationToken cancellationToken);

    /// <summary>
    /// As <see cref="IEventStore.AppendAsync"/> (dedup, seqs, profiles, one durable commit), and records
    /// <paramref name="mark"/> in that same commit; also when every event was a duplicate.
    /// </summary>
    Task<AppendResult> AppendAsync(IReadOnlyList<CollectedEvent> events, JournalMark mark, CancellationToken cancellationToken);

    /// <summary>
    /// As <see cref="AppendAsync"/>, but returns once the events are resolved in the engine (profiles and memberships
    /// readable from memory); <see cref="StagedAppend.Committed"/> completes when they and <paramref name="mark"/> are
    /// committed, in the order staged. When a commit fails, every later one fails too, and the next call restores the
    /// store's state from what was committed and throws <see cref="StoreRewoundException"/>: the caller reads the
    /// journal again from the last committed mark. A store that commits in the call (PostgreSQL) returns it committed.
    /// </summary>
    async Task<StagedAppend> StageAsync(IReadOnlyList<CollectedEvent> events, JournalMark mark, CancellationToken cancellationToken) =>
        new(await AppendAsync(events, mark, cancellationToken), Task.CompletedTask);

    /// <summary>
    /// True when <see cref="StageAsync"/> returns before the commit and the commits join whatever was staged since the
    /// last one (the embedded store): the indexer can then hand over small chunks without making more commits. False
    /// (PostgreSQL): every call is a commit of its own, and larger chunks make fewer of them.
    /// </summary>
    bool JoinsStagedAppends => false;

    /// <summary>
    /// Someone waits for what was staged to be committed (a reader behind the read barrier): while the handle is held,
    /// a store that holds its transaction open under load for larger commits (the embedded store) commits at its usual
    /// interval instead. A store that commits in the call has nothing to hurry.
    /// </summary>
    IDisposable PromptCommits() => NothingToPrompt.Instance;
}

/// <summary>The handle of a store whose commits need no prompting.</summary>
internal sealed class NothingToPrompt : IDisposable
{
    public static readonly NothingToPrompt Instance = new();

    public void Dispose()
    {
    }
}

/// <summary>An append resolved in memory; <see cref="Committed"/> completes when it is in the store (or faults).</summary>
public sealed record StagedAppend(AppendResult Result, Task Committed);

/// <summary>
/// A commit of staged appends failed; the store has since rebuilt its state from what it committed, up to journal
/// position <see cref="CommittedPosition"/> (null: none recorded). Read the journal again from there.
/// </summary>
public sealed class StoreRewoundException(long? committedPosition, Exception cause)
    : Exception($"a commit of staged events failed ({cause.Message}); the store was restored to what it committed", cause)
{
    public long? CommittedPosition { get; } = committedPosition;
}
