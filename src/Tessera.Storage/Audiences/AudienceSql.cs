using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Tessera.Storage.Audiences;

/// <summary>
/// A compiled audience query: the SQL text, in which every value is a placeholder (<c>$1, $2, ...</c>), and the
/// values in placeholder order. The text never contains a value from the definition.
/// </summary>
public sealed record AudienceSql(string Text, IReadOnlyList<object?> Parameters)
{
    /// <summary>The text followed by one comment line per parameter, for logs and debugging.</summary>
    public override string ToString()
    {
        var text = new StringBuilder(Text);
        for (var i = 0; i < Parameters.Count; i++)
        {
            var value = Parameters[i] switch
            {
                null => "NULL",
                string s => JsonSerializer.Serialize(s),
                string[] a => JsonSerializer.Serialize(a),
                DateTimeOffset t => t.ToString("O", CultureInfo.InvariantCulture),
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                var other => other.ToString(),
            };
            text.Append(CultureInfo.InvariantCulture, $"\n-- ${i + 1} = {value}");
        }

        return text.ToString();
    }
}
