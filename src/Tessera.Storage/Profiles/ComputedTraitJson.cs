using System.Text.Json;
using Tessera.Core.Conditions;
using Tessera.Core.Profiles;

namespace Tessera.Storage.Profiles;

/// <summary>How a computed trait definition is stored: the same JSON the API takes.</summary>
public static class ComputedTraitJson
{
    public static string Write(ComputedTraitDefinition definition) => JsonSerializer.Serialize(definition, ConditionJson.Options);

    public static ComputedTraitDefinition Read(string json) =>
        JsonSerializer.Deserialize<ComputedTraitDefinition>(json, ConditionJson.Options) ?? throw new StoreException("A stored computed trait definition is empty.");
}
