namespace Tessera.Storage.Settings;

/// <summary>Small named values kept with the data (for example the admin token's hash).</summary>
public interface ISettingsStore
{
    Task<string?> GetSettingAsync(string key, CancellationToken cancellationToken);

    /// <summary>Sets the value unless one is already there, and returns the value in force (safe when two processes race).</summary>
    Task<string> SetSettingIfAbsentAsync(string key, string value, CancellationToken cancellationToken);
}
