using System.Runtime.InteropServices;

namespace Tessera.Storage.Journal;

/// <summary>
/// Syncs a directory's entries to disk (a rename or a new file in it), which .NET has no call for: <c>open</c> read-only
/// and <c>fsync</c> on Linux and macOS; nothing elsewhere.
/// </summary>
internal static partial class DirectorySync
{
    public static void Sync(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) { return; }
        var fd = Open(directory, OperatingSystem.IsLinux() ? LinuxReadOnlyCloseOnExec : MacReadOnlyCloseOnExec);
        if (fd < 0) { throw new IOException($"{directory}: cannot open the directory to sync it (errno {Marshal.GetLastPInvokeError()})"); }
        try
        {
            if (Fsync(fd) != 0) { throw new IOException($"{directory}: cannot sync the directory (errno {Marshal.GetLastPInvokeError()})"); }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    // O_RDONLY (0) | O_CLOEXEC, whose value differs between the two.
    private const int LinuxReadOnlyCloseOnExec = 0x80000;
    private const int MacReadOnlyCloseOnExec = 0x1000000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
