using PhoneNumbers;

namespace Tessera.Core.Identity;

/// <summary>Turns a raw value into its canonical form, or says why it cannot be used.</summary>
public static class IdentifierNormalizer
{
    private static readonly PhoneNumberUtil Phones = PhoneNumberUtil.GetInstance();

    public static bool TryNormalize(string raw, Normalization normalization, string defaultRegion, out string value, out string? reason)
    {
        value = raw.Trim();
        reason = null;
        if (value.Length == 0)
        {
            reason = "empty";
            return false;
        }

        switch (normalization)
        {
            case Normalization.Lowercase:
                value = value.ToLowerInvariant();
                return true;
            case Normalization.Email:
                value = value.ToLowerInvariant();
                var at = value.IndexOf('@', StringComparison.Ordinal);
                if (at <= 0 || at != value.LastIndexOf('@') || value.IndexOf('.', at) < at + 2 || value.EndsWith('.') || value.Any(char.IsWhiteSpace))
                {
                    reason = "not an email address";
                    return false;
                }

                return true;
            case Normalization.Phone:
                try
                {
                    var number = Phones.Parse(value, defaultRegion);
                    if (!Phones.IsPossibleNumber(number))
                    {
                        reason = $"not a possible phone number (region {defaultRegion} assumed)";
                        return false;
                    }

                    value = Phones.Format(number, PhoneNumberFormat.E164);
                    return true;
                }
                catch (NumberParseException e)
                {
                    reason = $"not a phone number: {e.Message}";
                    return false;
                }

            case Normalization.Trim:
            default:
                return true;
        }
    }
}
