using System.Runtime.InteropServices;

namespace Tessera.Storage.Events;

/// <summary>
/// Memory outside the GC's heap taken straight from the kernel on Linux (<c>mmap</c>), so that freeing it gives it back
/// at once and growing or shrinking it moves page tables instead of copying (<c>mremap</c>). Through malloc, a block
/// under glibc's mmap threshold (which rises to 32 MB as large blocks are freed) comes from its heap, where a freed
/// block in the middle stays resident and growing one copies it. Elsewhere it is <see cref="NativeMemory"/>.
/// Not zeroed by contract (fresh Linux pages are).
/// </summary>
internal static unsafe partial class NativePages
{
    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20, MremapMayMove = 1;
    private static readonly nint Failed = -1;

    public static void* Allocate(long bytes)
    {
        if (!OperatingSystem.IsLinux()) { return NativeMemory.Alloc((nuint)Math.Max(bytes, 1)); }
        var address = Mmap(0, Length(bytes), ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        return address == Failed ? throw new InsufficientMemoryException($"mmap of {bytes:N0} bytes failed (errno {Marshal.GetLastPInvokeError()})") : (void*)address;
    }

    /// <summary>The block at <paramref name="block"/> resized from <paramref name="bytes"/> to <paramref name="newBytes"/>, its contents kept up to the smaller; it may move.</summary>
    public static void* Resize(void* block, long bytes, long newBytes)
    {
        if (!OperatingSystem.IsLinux()) { return NativeMemory.Realloc(block, (nuint)Math.Max(newBytes, 1)); }
        if (Length(bytes) == Length(newBytes)) { return block; }
        var address = Mremap((nint)block, Length(bytes), Length(newBytes), MremapMayMove);
        return address == Failed ? throw new InsufficientMemoryException($"mremap to {newBytes:N0} bytes failed (errno {Marshal.GetLastPInvokeError()})") : (void*)address;
    }

    public static void Free(void* block, long bytes)
    {
        if (block is null) { return; }
        if (!OperatingSystem.IsLinux())
        {
            NativeMemory.Free(block);
            return;
        }

        _ = Munmap((nint)block, Length(bytes));
    }

    /// <summary>Whole pages, at least one.</summary>
    private static nuint Length(long bytes)
    {
        var page = Environment.SystemPageSize;
        return (nuint)((Math.Max(bytes, 1) + page - 1) / page * page);
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "mremap", SetLastError = true)]
    private static partial nint Mremap(nint address, nuint length, nuint newLength, int flags);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(nint address, nuint length);
}
