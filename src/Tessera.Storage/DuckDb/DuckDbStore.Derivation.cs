using Tessera.Core.Activation;
using Tessera.Storage.Activation;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// What activation's and the journeys' derivation steps (one of each after every commit) can know without asking
/// DuckDB. The process owns the file, so it knows where each derivation has got to, what the committer has committed,
/// whether a committed event states consent, and whether any destination or journey exists. A step that would read
/// nothing (no destination and no consent stated since its position; no journey) moves its position to what is
/// committed in memory, with no statement at all; a step that reads nothing writes nothing either, and its position is
/// written to the cursor tables only before a destination or journey changes and when the store closes. At 1,000
/// single-event requests a second the two steps were half of DuckDB's time in the server (docs/benchmarks.md, "What a
/// derivation step and a commit cost at low rates").
/// </summary>
public sealed partial class DuckDbStore
{
    private readonly DerivationPosition _activationAt = new();
    private readonly DerivationPosition _journeysAt = new();

    /// <summary>Whether the last activation step found no destination; null until a step has read them and after any change to them.</summary>
    private bool? _noDestinations;

    /// <summary>Whether the last journeys step found no journey but drafts; null until a step has read them and after any change.</summary>
    private bool? _noJourneys;

    /// <summary>The last event seq and audience change id committed (set after each commit).</summary>
    private long _committedSeq;
    private long _committedChange;

    /// <summary>The seq of the last event staged whose message states consent (activation records those for everyone).</summary>
    private long _lastConsentSeq;

    /// <summary>
    /// Where a derivation has got to as far as this process knows (under <see cref="_activationLock"/>): the position
    /// after its last step, and whether that is past its cursor table.
    /// </summary>
    private sealed class DerivationPosition
    {
        private ActivationCursor? _at;
        private bool _ahead;

        /// <summary>The position after the last step; null before the first.</summary>
        public ActivationCursor? At => _at;

        /// <summary>
        /// Where a step starts: the table's cursor (<paramref name="stored"/>), or this process's position where the steps
        /// since the table's last update read nothing (and so wrote nothing). After a crash those steps run again from the
        /// table's cursor and again find nothing: the events and changes are the same, and so are the destinations and
        /// journeys, as any change to them first writes the positions to the tables (<see cref="WriteAheadCursorsAsync"/>).
        /// </summary>
        public ActivationCursor From(ActivationCursor stored) =>
            _ahead && _at is { } at && at.ChangeId >= stored.ChangeId && at.Seq >= stored.Seq ? at : stored;

        /// <summary>A step ended at <paramref name="to"/>, having written it to the table or not.</summary>
        public void Moved(ActivationCursor to, bool written) => (_at, _ahead) = (to, !written);

        /// <summary>The position to write to the table, if it is ahead of it.</summary>
        public ActivationCursor? Unwritten => _ahead ? _at : null;

        public void Written() => _ahead = false;
    }

    /// <summary>Where the committed logs end now, at least as far as <paramref name="at"/>.</summary>
    private ActivationCursor CommittedFrom(ActivationCursor at) =>
        new(Math.Max(at.ChangeId, Volatile.Read(ref _committedChange)), Math.Max(at.Seq, Volatile.Read(ref _committedSeq)));

    /// <summary>
    /// An activation step with nothing to read: no destination, and no event stating consent staged past the position.
    /// Moves the position to the end of what is committed, in memory.
    /// </summary>
    private bool SkipQuietActivationStep()
    {
        if (_noDestinations != true || _activationAt.At is not { } at || Volatile.Read(ref _lastConsentSeq) > at.Seq) { return false; }
        _activationAt.Moved(CommittedFrom(at), written: false);
        return true;
    }

    /// <summary>A journeys step with nothing to read: no journey but drafts. Moves the position likewise.</summary>
    private bool SkipQuietJourneysStep()
    {
        if (_noJourneys != true || _journeysAt.At is not { } at) { return false; }
        _journeysAt.Moved(CommittedFrom(at), written: false);
        return true;
    }

    /// <summary>Writes the positions kept in memory to their cursor tables (call under <see cref="_activationLock"/>).</summary>
    private async Task WriteAheadCursorsAsync(CancellationToken cancellationToken)
    {
        foreach (var (position, table) in new[] { (_activationAt, "activation_cursor"), (_journeysAt, "journey_cursor") })
        {
            if (position.Unwritten is not { } at) { continue; }
            await ExecuteAsync($"UPDATE {table} SET change_id = greatest(change_id, $1), seq = greatest(seq, $2)", cancellationToken, at.ChangeId, at.Seq);
            position.Written();
        }
    }

    /// <summary>Notes, at staging (under the write lock), the events whose messages state consent.</summary>
    private void NoteConsent((long Seq, Core.Collection.CollectedEvent Event)[] events)
    {
        foreach (var (seq, e) in events)
        {
            if (e.Raw.Contains(Consent.Marker)) { Volatile.Write(ref _lastConsentSeq, seq); }
        }
    }

    /// <summary>After a commit: what the logs now hold.</summary>
    private void NoteCommitted(long seq, long change)
    {
        if (seq > Volatile.Read(ref _committedSeq)) { Volatile.Write(ref _committedSeq, seq); }
        if (change > Volatile.Read(ref _committedChange)) { Volatile.Write(ref _committedChange, change); }
    }
}
