namespace Tessera.Core.Audiences;

/// <summary>What is wrong with a definition, and where: <see cref="Path"/> points at the node (<c>and[1].count.op</c>).</summary>
public sealed record DefinitionError(string Path, string Message)
{
    public override string ToString() => Path.Length == 0 ? Message : $"{Path}: {Message}";
}
