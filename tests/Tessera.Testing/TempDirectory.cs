namespace Tessera.Testing;

/// <summary>Fresh directories under the system temp folder, one per test, removed when the test run ends.</summary>
public static class TempDirectory
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), "tessera-tests", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));

    static TempDirectory()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
    }

    public static string Create(string prefix)
    {
        var path = Path.Combine(Root, $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }
}
