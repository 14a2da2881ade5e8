using System.Runtime.InteropServices;

namespace Tessera.Storage.DuckDb;

/// <summary>
/// The allocator inside DuckDB's Linux library (its own copy of jemalloc): how soon memory DuckDB frees goes back to
/// the kernel. DuckDB's build keeps freed pages for 5 s, then marks them lazily freed (MADV_FREE) for another 5 s, and
/// both still count in the resident set (lazily freed pages until the kernel needs them): after each checkpoint of a
/// busy store, tens of MB it no longer uses. <see cref="Default"/> gives them back after 100 ms, at once, from
/// jemalloc's background thread: flat out, a median resident set ~23 MB lower and the highest ~17 MB lower over seven
/// interleaved runs, the rate not lower; at 0 ms (purged in DuckDB's own threads) ~50 MB lower, but 10-20 % of the rate
/// went with it (docs/benchmarks.md, "Older message ids in sorted runs"). And one arena for all of DuckDB's threads
/// instead of jemalloc's four a core (eight here), each keeping pages of its own: flat out over 120 s, six interleaved
/// pairs, the median resident set 5-32 MB lower and the highest 3-45 MB lower in every pair, the rate the same (median
/// pair ratio 1.03; docs/benchmarks.md, "One arena for DuckDB's allocator"). The committer and DuckDB's one worker are
/// the only threads that allocate much in DuckDB, on two cores.
/// </summary>
/// <remarks>
/// jemalloc reads its options once, when the library loads, from <see cref="ConfigVariable"/>, so the setting must be in
/// the process's environment before the first DuckDB call: <c>tessera</c> sets it first thing in its <c>Main</c>
/// (<see cref="UseDefaultUnlessSet"/>); one set by the user wins.
/// </remarks>
public static partial class DuckDbAllocator
{
    public const string ConfigVariable = "DUCKDB_JE_MALLOC_CONF";
    public const string Default = "dirty_decay_ms:100,muzzy_decay_ms:0,background_thread:true,narenas:1";

    /// <summary>
    /// Puts <see cref="Default"/> in the process's environment unless <see cref="ConfigVariable"/> is set already. Call
    /// before DuckDB's library is loaded and while no other thread reads the environment (the start of <c>Main</c>).
    /// </summary>
    public static void UseDefaultUnlessSet()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(ConfigVariable) is not null) { return; }
        _ = SetEnv(ConfigVariable, Default, overwrite: 0);
    }

    /// <summary>
    /// The options DuckDB's allocator runs with, as jemalloc reports them (e.g. "dirty_decay_ms 100, muzzy_decay_ms 0,
    /// background_thread true, narenas 1"), or null where DuckDB's library has no jemalloc (not Linux). Loads the library.
    /// </summary>
    public static unsafe string? Describe()
    {
        try
        {
            long dirty = 0, muzzy = 0;
            byte background = 0;
            nuint length = sizeof(long);
            if (Mallctl("opt.dirty_decay_ms", &dirty, &length, null, 0) != 0) { return null; }
            length = sizeof(long);
            if (Mallctl("opt.muzzy_decay_ms", &muzzy, &length, null, 0) != 0) { return null; }
            length = 1;
            if (Mallctl("opt.background_thread", &background, &length, null, 0) != 0) { return null; }
            uint arenas = 0;
            length = sizeof(uint);
            if (Mallctl("opt.narenas", &arenas, &length, null, 0) != 0) { return null; }
            return FormattableString.Invariant($"dirty_decay_ms {dirty}, muzzy_decay_ms {muzzy}, background_thread {(background != 0 ? "true" : "false")}, narenas {arenas}");
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// What DuckDB's allocator holds now, as jemalloc counts it: the bytes DuckDB has allocated (its buffer manager's
    /// blocks and everything else it keeps: a checkpoint's, the catalog's, the indexes'), the pages of memory the
    /// allocator holds resident for them (with its own metadata and freed pages not yet given back), and of those: the
    /// pages of the allocations' slabs and extents (active: allocated plus the slabs' free slots), the allocator's
    /// metadata, and the freed pages waiting to be purged (dirty) or lazily freed (muzzy). Null where DuckDB's library
    /// has no jemalloc (not Linux). Thread-safe; refreshes jemalloc's statistics (its <c>epoch</c>) first.
    /// </summary>
    public static unsafe AllocatorStats? Stats()
    {
        try
        {
            ulong epoch = 1;
            nuint length = sizeof(ulong);
            if (Mallctl("epoch", &epoch, &length, &epoch, sizeof(ulong)) != 0) { return null; }
            if (Read("stats.allocated") is not { } allocated || Read("stats.resident") is not { } resident || Read("stats.active") is not { } active
                || Read("stats.metadata") is not { } metadata || Read("arenas.page") is not { } page
                || Read("stats.arenas.4096.pdirty") is not { } dirty || Read("stats.arenas.4096.pmuzzy") is not { } muzzy)
            {
                return null;
            }
            return new AllocatorStats(allocated, resident, active, metadata, dirty * page, muzzy * page);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }

        static long? Read(string name)
        {
            nuint value = 0, size = (nuint)sizeof(nuint);
            return Mallctl(name, &value, &size, null, 0) == 0 ? (long)value : null;
        }
    }

    /// <summary>
    /// Gives every page DuckDB's allocator holds for memory DuckDB freed back to the kernel now (jemalloc's purge of all
    /// arenas), instead of over its decay time: for the committer after a commit or checkpoint that freed a transaction's
    /// row groups at once. False where DuckDB's library has no jemalloc (not Linux). Thread-safe.
    /// </summary>
    public static unsafe bool Purge()
    {
        try
        {
            return Mallctl("arena.4096.purge", null, null, null, 0) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("duckdb", EntryPoint = "duckdb_je_mallctl", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Mallctl(string name, void* oldValue, nuint* oldLength, void* newValue, nuint newLength);
}

/// <summary>What DuckDB's allocator holds, in bytes (<see cref="DuckDbAllocator.Stats"/>).</summary>
public readonly record struct AllocatorStats(long Allocated, long Resident, long Active, long Metadata, long Dirty, long Muzzy);
