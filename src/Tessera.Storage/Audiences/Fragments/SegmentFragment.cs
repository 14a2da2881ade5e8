using Tessera.Core.Audiences;

namespace Tessera.Storage.Audiences.Fragments;

/// <summary>
/// <c>{"segment": id}</c>: the referenced audience's definition, inlined. An unknown audience, or a reference deeper
/// than <see cref="AudienceDefinition.MaxDepth"/> (a cycle), is FALSE, as in memory.
/// </summary>
internal sealed class SegmentFragment(SegmentReference reference) : AudienceFragment
{
    public override string Sql(AudienceSqlBuilder b)
    {
        if (b.Depth >= AudienceDefinition.MaxDepth || b.Segment(reference.SegmentId) is not { } referenced) { return "FALSE"; }
        b.Depth++;
        try
        {
            return For(referenced).Sql(b);
        }
        finally
        {
            b.Depth--;
        }
    }
}
