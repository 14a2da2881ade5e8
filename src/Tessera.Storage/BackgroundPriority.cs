using System.Runtime.InteropServices;

namespace Tessera.Storage;

/// <summary>
/// The scheduling priority of the threads that work behind the answers: the journal's indexer (the engine) and the
/// embedded store's committer. An event is answered once the journal has it on disk; what these threads do (resolving
/// identities, appending to DuckDB, its row groups' compression) can wait, the answer cannot. On Linux each thread has
/// its own nice value, and a higher one gives the request path's threads (Kestrel's, the journal's group commit) the
/// CPU first whenever both want it, while the background threads still take every cycle the answers leave
/// (docs/benchmarks.md, "The answers before the indexing").
/// </summary>
public static partial class BackgroundPriority
{
    /// <summary>The default nice value of those threads (0 is the process's own; 19 the lowest priority).</summary>
    public const int DefaultNice = 5;

    /// <summary>
    /// Gives the calling thread <paramref name="nice"/> (clamped to 0-19; 0 leaves it as it is). False where threads have
    /// no nice value of their own (not Linux) or the call failed; the thread runs at the process's priority then.
    /// </summary>
    public static bool Apply(int nice)
    {
        nice = Math.Clamp(nice, 0, 19);
        if (nice == 0 || !OperatingSystem.IsLinux()) { return false; }
        // Linux: PRIO_PROCESS with 0 is the calling thread (a task), not the whole process (setpriority(2), "BUGS").
        return SetPriority(PrioProcess, 0, nice) == 0;
    }

    private const int PrioProcess = 0;

    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriority(int which, uint who, int prio);
}
