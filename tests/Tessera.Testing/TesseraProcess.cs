using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Tessera.Testing;

/// <summary>
/// The real <c>tessera</c> command in its own process, for what only a process can show: <c>kill -9</c>, SIGTERM,
/// exit codes, and clients in other languages talking to it.
/// </summary>
public sealed class TesseraProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private TesseraProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
        process.OutputDataReceived += (_, e) => { lock (_output) { _output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (_output) { _output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Uri BaseAddress { get; }

    public int Id => _process.Id;

    public string Output { get { lock (_output) { return _output.ToString(); } } }

    /// <summary>The built <c>tessera.dll</c> beside the test assembly.</summary>
    public static string CliPath => Path.Combine(AppContext.BaseDirectory, "tessera.dll");

    /// <summary>
    /// A port free on loopback now, chosen below Linux's ephemeral range (32768-60999): a port the kernel hands out
    /// for port 0 is also what it hands to outgoing connections, so one of the suite's many clients could take it
    /// before the server that was meant to bind it starts.
    /// </summary>
    public static int FreePort()
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var port = Random.Shared.Next(20000, 32000);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException) { }
        }

        throw new InvalidOperationException("no free loopback port between 20000 and 32000 after 100 tries");
    }

    /// <summary>
    /// Runs <paramref name="start"/> on a <see cref="FreePort"/>. A port free when chosen can be taken by another
    /// process (a parallel test assembly) before the server binds it: when <paramref name="start"/> says so with a
    /// <see cref="PortTakenException"/> (having cleaned up after itself), it runs again on a new port, up to 3 times.
    /// Any other failure is reported as it is.
    /// </summary>
    public static async Task<T> OnFreePortAsync<T>(Func<int, Task<T>> start)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await start(FreePort());
            }
            catch (PortTakenException) when (attempt < 3) { }
        }
    }

    /// <summary>Runs <c>tessera serve</c> with the test keys on a free port and waits until <c>/health</c> answers 200.</summary>
    public static Task<TesseraProcess> StartServeAsync(string dataDir, params string[] extraArgs) =>
        StartServeAsync(dataDir, new Dictionary<string, string>(), extraArgs);

    /// <summary>As <see cref="StartServeAsync(string, string[])"/>, with <paramref name="environment"/> added to the process's environment.</summary>
    public static Task<TesseraProcess> StartServeAsync(string dataDir, IReadOnlyDictionary<string, string> environment, params string[] extraArgs) =>
        OnFreePortAsync(async port =>
        {
            var tessera = StartServe(dataDir, extraArgs, environment, port);
            try
            {
                await tessera.WaitHealthyAsync(TimeSpan.FromSeconds(60));
                return tessera;
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                await tessera.DisposeAsync();
                if (tessera.Output.Contains("address already in use", StringComparison.Ordinal)) { throw new PortTakenException(port, e); }
                throw;
            }
        });

    private static TesseraProcess StartServe(string dataDir, string[] extraArgs, IReadOnlyDictionary<string, string> environment, int port)
    {
        var url = $"http://127.0.0.1:{port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { CliPath, "serve", "--urls", url, "--data-dir", dataDir }.Concat(extraArgs)) { start.ArgumentList.Add(a); }
        start.Environment["TESSERA_ADMIN_TOKEN"] = TestServer.AdminToken;
        start.Environment["TESSERA_WRITE_KEY"] = TestServer.WriteKey;
        foreach (var (name, value) in environment) { start.Environment[name] = value; }
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start tessera");
        return new TesseraProcess(process, new Uri(url + "/"));
    }

    /// <summary>Runs a tessera command to its end and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(CliPath);
        foreach (var a in args) { start.ArgumentList.Add(a); }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start tessera");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    public async Task WaitHealthyAsync(TimeSpan timeout)
    {
        using var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) { throw new InvalidOperationException($"tessera exited with {_process.ExitCode}:\n{Output}"); }
            try
            {
                if ((await client.GetAsync("health")).IsSuccessStatusCode) { return; }
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }

            await Task.Delay(100);
        }

        throw new TimeoutException($"tessera did not become healthy in {timeout}:\n{Output}");
    }

    /// <summary><c>kill -9</c>: no flush, no goodbye.</summary>
    public async Task KillHardAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM, then waits for the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) { await kill.WaitForExitAsync(); }
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
