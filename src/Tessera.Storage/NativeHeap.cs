using System.Runtime.InteropServices;

namespace Tessera.Storage;

/// <summary>
/// The C library's heap (glibc's malloc), where DuckDB's C++ objects outside its own allocator live (its compression
/// analyses' hash tables and encoders, statistics, the catalog) with the runtime's and zstd's native state. glibc keeps
/// the free chunks between held ones resident, in an arena for each thread that allocated (sixteen here): flat out, 44
/// MB of its 65 MB were free in one sample. The committer trims it where it purges DuckDB's allocator.
/// </summary>
public static partial class NativeHeap
{
    /// <summary>
    /// Gives the C library's free memory back to the kernel (glibc's <c>malloc_trim(0)</c>: the whole pages inside every
    /// arena's free chunks, not only the top of each heap). False where the C library has no such call (not glibc).
    /// </summary>
    public static bool Trim()
    {
        if (!OperatingSystem.IsLinux()) { return false; }
        try
        {
            return MallocTrim(0) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
