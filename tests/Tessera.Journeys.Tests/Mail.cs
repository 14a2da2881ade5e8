namespace Tessera.Journeys.Tests;

/// <summary>The real SMTP server test.sh starts (postfix's smtp-sink, one file per message).</summary>
internal static class Mail
{
    public static string Host => Environment.GetEnvironmentVariable("TESSERA_TEST_SMTP_HOST") ?? "127.0.0.1";

    public static int Port => int.Parse(Environment.GetEnvironmentVariable("TESSERA_TEST_SMTP_PORT")
        ?? throw new InvalidOperationException("TESSERA_TEST_SMTP_PORT is not set: run `source scripts/deps/smtp.sh` (test.sh does it)."), System.Globalization.CultureInfo.InvariantCulture);

    private static string Directory => Environment.GetEnvironmentVariable("TESSERA_TEST_SMTP_DIR")
        ?? throw new InvalidOperationException("TESSERA_TEST_SMTP_DIR is not set: run `source scripts/deps/smtp.sh`.");

    /// <summary>The messages received (envelope and message) that contain <paramref name="marker"/>.</summary>
    public static List<string> With(string marker) =>
        [.. System.IO.Directory.EnumerateFiles(Directory).Select(File.ReadAllText).Where(m => m.Contains(marker, StringComparison.Ordinal))];
}
