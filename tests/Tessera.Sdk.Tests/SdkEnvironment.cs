namespace Tessera.Sdk.Tests;

/// <summary>
/// Where the npm packages and the browser are. <c>scripts/deps/node.sh</c> and <c>scripts/deps/chromium.sh</c> install
/// them and export these variables; without them the tests fail and say so, rather than skipping.
/// </summary>
public static class SdkEnvironment
{
    public static string SdkDirectory
    {
        get
        {
            var dir = Require("TESSERA_SDK_DIR", "scripts/deps/node.sh");
            if (!File.Exists(Path.Combine(dir, "node_modules", "@segment", "analytics-node", "package.json")))
            {
                throw new InvalidOperationException($"TESSERA_SDK_DIR={dir} has no installed npm packages: source scripts/deps/node.sh (it runs npm ci there).");
            }

            return dir;
        }
    }

    public static string Chromium
    {
        get
        {
            var path = Require("TESSERA_CHROMIUM", "scripts/deps/chromium.sh");
            if (!File.Exists(path)) { throw new InvalidOperationException($"TESSERA_CHROMIUM={path} does not exist: source scripts/deps/chromium.sh (it installs Debian's chromium)."); }
            return path;
        }
    }

    private static string Require(string name, string script) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"{name} is not set: source {script} before running the SDK tests (test.sh does).");
}
