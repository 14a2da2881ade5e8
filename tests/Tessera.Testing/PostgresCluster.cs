using System.Diagnostics;
using System.Globalization;

namespace Tessera.Testing;

/// <summary>
/// A private PostgreSQL cluster for one test, on its own port and directory, for tests that stop and start the
/// server: restarting the shared cluster would break every other test using it at the time. Built with the
/// binaries named by <c>TESSERA_TEST_PG_BIN</c>; runs as the <c>postgres</c> user when the tests run as root.
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    private readonly string _bin;
    private readonly string _data;
    private readonly int _port;

    private PostgresCluster(string bin, string data, int port)
    {
        _bin = bin;
        _data = data;
        _port = port;
    }

    public string ConnectionString => $"Host=127.0.0.1;Port={_port};Username=postgres;Database=postgres";

    /// <summary>Creates the cluster (initdb, about a second) and starts it.</summary>
    public static async Task<PostgresCluster> StartNewAsync()
    {
        var bin = Environment.GetEnvironmentVariable("TESSERA_TEST_PG_BIN") is { Length: > 0 } b
            ? b
            : throw new InvalidOperationException("TESSERA_TEST_PG_BIN is not set: run `source scripts/deps/postgres.sh` (test.sh does it).");
        return await TesseraProcess.OnFreePortAsync(async port =>
        {
            // Under /tmp, which the postgres user may write; initdb creates the directory itself.
            var cluster = new PostgresCluster(bin, Path.Combine("/tmp", $"tessera-pg-{Guid.NewGuid():N}"), port);
            await cluster.RunAsync("initdb", "-D", cluster._data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync");
            try
            {
                await cluster.StartAsync();
                return cluster;
            }
            catch (InvalidOperationException e) when (cluster.LogSays("Address already in use"))
            {
                // Any other failure leaves the directory, and its server.log, for a look.
                await cluster.DisposeAsync();
                throw new PortTakenException(port, e);
            }
        });
    }

    /// <summary>The last <paramref name="lines"/> lines of the server's log, for a test's output when a read fails.</summary>
    public string LogTail(int lines = 30)
    {
        try
        {
            return string.Join('\n', File.ReadLines(Path.Combine(_data, "server.log")).TakeLast(lines));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"(no server.log: {e.Message})";
        }
    }

    private bool LogSays(string text)
    {
        try
        {
            return File.ReadAllText(Path.Combine(_data, "server.log")).Contains(text, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    public Task StartAsync() => PgCtlAsync("start", "-l", Path.Combine(_data, "server.log"),
        "-o", $"-p {_port.ToString(CultureInfo.InvariantCulture)} -c listen_addresses=127.0.0.1 -k /tmp");

    /// <summary>Stops the server; <c>fast</c> disconnects clients as an operator's restart does, <c>immediate</c> is a crash.</summary>
    public Task StopAsync(string mode = "fast") => PgCtlAsync("stop", "-m", mode);

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync("immediate"); } catch (InvalidOperationException) { }
        try { Directory.Delete(_data, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private Task PgCtlAsync(params string[] args) => RunAsync("pg_ctl", ["-D", _data, "-w", "-t", "60", .. args]);

    private async Task RunAsync(string tool, params string[] args)
    {
        var asRoot = Environment.UserName == "root";
        var start = new ProcessStartInfo(asRoot ? "runuser" : Path.Combine(_bin, tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asRoot)
        {
            foreach (var a in new[] { "-u", "postgres", "--", Path.Combine(_bin, tool) }) { start.ArgumentList.Add(a); }
        }

        foreach (var a in args) { start.ArgumentList.Add(a); }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {tool}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} exited with {process.ExitCode}:\n{await stdout}{await stderr}");
        }
    }
}
