using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Tessera.LoadGen;

/// <summary>A server the load generator started itself: tessera serve on a fresh data directory, or the ceiling.</summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string? _dataDir;

    private readonly string? _log;

    private ServerProcess(Process process, string url, string? dataDir, string? log)
    {
        _log = log;
        _process = process;
        _dataDir = dataDir;
        Url = url;
        process.OutputDataReceived += (_, e) => { lock (_output) { _output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (_output) { _output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Url { get; }

    public int Pid => _process.Id;

    public static async Task<ServerProcess> StartAsync(LoadOptions options)
    {
        var dll = options.Dll ?? DefaultDll(options.Spawn!);
        if (!File.Exists(dll)) { throw new FileNotFoundException($"{dll} not found; build Release first (bench/run.sh does) or pass --dll", dll); }

        var port = FreePort();
        var url = $"http://127.0.0.1:{port}";
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        string? dataDir = null;
        if (options.Spawn == "tessera")
        {
            dataDir = Path.Combine(Path.GetTempPath(), "tessera-bench-" + Guid.NewGuid().ToString("N")[..12]);
            if (options.StoreFrom is not null)
            {
                Directory.CreateDirectory(dataDir);
                File.Copy(options.StoreFrom, Path.Combine(dataDir, "tessera.duckdb"));
            }

            foreach (var a in new[] { "serve", "--urls", url, "--data-dir", dataDir }.Concat(options.ServeArgs)) { start.ArgumentList.Add(a); }
            start.Environment["TESSERA_ADMIN_TOKEN"] = options.AdminToken;
            start.Environment["TESSERA_WRITE_KEY"] = options.WriteKey;
        }
        else
        {
            foreach (var a in new[] { "--urls", url }) { start.ArgumentList.Add(a); }
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {dll}");
        var server = new ServerProcess(process, url, dataDir, options.ServerLog);
        // A filled store is read into the engine before the server answers: a million profiles took 15-20 s here, more
        // on a busy machine or a larger file.
        await server.WaitHealthyAsync("/health", TimeSpan.FromSeconds(options.StoreFrom is null ? 60 : 900));
        return server;
    }

    private static string DefaultDll(string spawn)
    {
        // bench/Tessera.LoadGen/bin/Release/net10.0/ → the repository root is five levels up.
        var root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", ".."));
        var configuration = new DirectoryInfo(Path.Combine(AppContext.BaseDirectory, "..")).Name;
        return spawn == "tessera"
            ? Path.Combine(root, "src", "Tessera.Cli", "bin", configuration, "net10.0", "tessera.dll")
            : Path.Combine(root, "bench", "Tessera.Ceiling", "bin", configuration, "net10.0", "Tessera.Ceiling.dll");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task WaitHealthyAsync(string path, TimeSpan timeout)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) { throw new InvalidOperationException($"the server exited with {_process.ExitCode}:\n{Output}"); }
            try
            {
                if ((await client.GetAsync(new Uri(Url + path))).IsSuccessStatusCode) { return; }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Starting slowly.
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"the server did not answer {path} within {timeout.TotalSeconds} s:\n{Output}");
    }

    public string Output { get { lock (_output) { return _output.ToString(); } } }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // SIGTERM, so tessera drains and checkpoints like a real shutdown; SIGKILL if it takes too long.
            using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])) { await term.WaitForExitAsync(); }
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        if (_log is not null) { await File.WriteAllTextAsync(_log, Output); }
        _process.Dispose();
        if (_dataDir is not null && Directory.Exists(_dataDir)) { Directory.Delete(_dataDir, recursive: true); }
    }
}

/// <summary>Samples a process's resident memory (<c>/proc/&lt;pid&gt;/status</c>) and CPU time (<c>/proc/&lt;pid&gt;/stat</c>); Linux only.</summary>
internal sealed class ProcessSampler : IAsyncDisposable
{
    private readonly int _pid;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public ProcessSampler(int pid, TimeSpan every)
    {
        _pid = pid;
        _firstCpu = CpuTicks();
        _firstAt = System.Diagnostics.Stopwatch.GetTimestamp();
        _loop = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(every);
            try
            {
                do { Sample(); } while (await timer.WaitForNextTickAsync(_stop.Token));
            }
            catch (OperationCanceledException)
            {
                // Stopped.
            }
        });
    }

    /// <summary>Largest VmRSS seen, in KB.</summary>
    public long MaxRssKb { get; private set; }

    /// <summary>The kernel's own high-water mark of VmRSS (VmHWM), in KB, at the last sample.</summary>
    public long HwmKb { get; private set; }

    public long LastRssKb { get; private set; }

    /// <summary>Average CPU the process used while sampled, in cores (1.0 = one core busy).</summary>
    public double CpuCores { get; private set; }

    private readonly long _firstCpu;
    private readonly long _firstAt;

    // utime + stime, in clock ticks (100 per second on Linux), fields 14 and 15 after the ")" closing the name.
    private long CpuTicks()
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{_pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private void Sample()
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{_pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) { LastRssKb = Kb(line); MaxRssKb = Math.Max(MaxRssKb, LastRssKb); }
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) { HwmKb = Kb(line); }
            }
        }
        catch (IOException)
        {
            // The process is gone.
        }
    }

    private static long Kb(string line) => long.Parse(line.Split(':', 2)[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        Sample();
        var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(_firstAt).TotalSeconds;
        CpuCores = (CpuTicks() - _firstCpu) / 100.0 / seconds;
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
