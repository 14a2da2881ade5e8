namespace Tessera.Storage.DuckDb;

/// <summary>
/// Tests only (<see cref="DuckDbStoreOptions.CommitGate"/>): while closed, the committer waits before each commit and
/// appends go on staging, so a test holds a commit back for exactly as long as it needs instead of for a guessed delay.
/// Open when made; a store being closed opens it, so a close after a failed assertion does not wait forever.
/// </summary>
internal sealed class CommitGate : IDisposable
{
    private readonly ManualResetEventSlim _open = new(initialState: true);

    /// <summary>Commits from here on wait until <see cref="Open"/>.</summary>
    public void Close() => _open.Reset();

    /// <summary>Lets the held commit, and every later one, go.</summary>
    public void Open() => _open.Set();

    /// <summary>The committer's side: returns once the gate is open.</summary>
    internal void WaitOpen() => _open.Wait();

    public void Dispose() => _open.Dispose();
}
