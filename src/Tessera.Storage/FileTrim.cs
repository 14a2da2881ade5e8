using Microsoft.Win32.SafeHandles;

namespace Tessera.Storage;

/// <summary>
/// Frees a large file's blocks a few MB at a time before it is deleted or closed. A filesystem mounted to discard freed
/// blocks at once (ext4 <c>discard</c>, as on the benchmark machine) holds the disk for tens of ms when a file of tens of
/// MB goes in one step, and every fsync behind it waits: the journal's group commit, so every answer (docs/benchmarks.md,
/// "Segments deleted in steps"). Cut down in steps with a pause between them, each holds it for a few ms. It sleeps
/// between the steps: call it from a thread that nothing waits for, never the thread pool's.
/// </summary>
internal static class FileTrim
{
    /// <summary>How much a step frees.</summary>
    public const long StepBytes = 4L << 20;

    /// <summary>The pause after each step.</summary>
    public static readonly TimeSpan StepPause = TimeSpan.FromMilliseconds(20);

    /// <summary>Cuts the open file down <see cref="StepBytes"/> at a time until at most that much is left.</summary>
    public static void CutDown(SafeFileHandle file)
    {
        for (var length = RandomAccess.GetLength(file); length > StepBytes;)
        {
            length -= StepBytes;
            RandomAccess.SetLength(file, length);
            Thread.Sleep(StepPause);
        }
    }
}
