namespace Tessera.Core.Collection;

/// <summary>Why one message was refused: the offending field (a JSON path such as <c>batch[3].userId</c>) and a reason.</summary>
public sealed record Rejection(string Field, string Reason)
{
    /// <summary>The same rejection with its field path placed under <paramref name="prefix"/>.</summary>
    public Rejection Under(string prefix) =>
        this with { Field = Field.Length == 0 ? prefix : Field.StartsWith('[') ? prefix + Field : prefix + "." + Field };
}
