using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Tessera.Sdk.Tests;

/// <summary>Runs one of the driver scripts in <c>tests/sdk</c> with node and reads the JSON report it prints last.</summary>
public static class NodeScript
{
    public static async Task<SdkReport> RunAsync(string script, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var dir = SdkEnvironment.SdkDirectory;
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(dir, script));
        foreach (var arg in args) { start.ArgumentList.Add(arg); }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) { start.Environment[name] = value; }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("node did not start");
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"could not run node ({e.Message}): install Node.js 20 or later (scripts/deps/node.sh does on Debian)", e);
        }

        using (process)
        {
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                throw new TimeoutException($"node {script} did not finish in {timeout}.\nstdout:\n{await stdout}\nstderr:\n{await stderr}");
            }

            var output = await stdout;
            var errors = await stderr;
            var last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
            if (process.ExitCode != 0 || last is null || !last.StartsWith('{'))
            {
                throw new InvalidOperationException($"node {script} exited with {process.ExitCode}.\nstdout:\n{output}\nstderr:\n{errors}");
            }

            return new SdkReport(JsonNode.Parse(last)!.AsObject(), errors);
        }
    }
}
