using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Tessera.Testing;

namespace Tessera.Profiles.Tests;

/// <summary>ONE ID through the collection API: stitching, merges with provenance, limits, normalisation, blocked values.</summary>
public sealed class IdentityResolutionTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task anonymous_browsing_is_stitched_to_the_person_when_they_identify()
    {
        await _server.SendAsync("page", """{"anonymousId":"anon-1","name":"Home"}""");
        await _server.SendAsync("track", """{"anonymousId":"anon-1","event":"Product Viewed"}""");
        await _server.SendAsync("identify", """{"anonymousId":"anon-1","userId":"user-1","traits":{"email":" Ann@Example.COM ","firstName":"Ann"}}""");

        var profile = (await _server.ProfileByAsync("user_id:user-1"))!;
        Assert.Equal(["anonymous_id:anon-1", "email:ann@example.com", "user_id:user-1"], profile.Identifiers().Order());
        Assert.Equal(profile.Id(), (await _server.ProfileByAsync("anonymous_id:anon-1"))!.Id());
        Assert.Equal("Ann", profile["traits"]!["firstName"]!.GetValue<string>());
        var events = (await _server.Admin.GetFromJsonAsync<JsonObject>($"api/profiles/{profile.Id()}/events"))!["items"]!.AsArray();
        Assert.Equal(["identify", "track", "page"], events.Select(e => e!["type"]!.GetValue<string>()));
        Assert.All(events, e => Assert.Equal(profile.Id(), e!["profileId"]!.GetValue<string>()));
    }

    [Fact]
    public async Task lookup_normalises_the_identifier_it_is_given()
    {
        await _server.SendAsync("identify", """{"userId":"norm-1","traits":{"email":"Bob@Example.com","phone":"(415) 555-0199"}}""");

        Assert.NotNull(await _server.ProfileByAsync("email:  BOB@example.com"));
        var byPhone = (await _server.ProfileByAsync("phone:+1 415 555 0199"))!;
        Assert.Contains("phone:+14155550199", byPhone.Identifiers());
    }

    [Fact]
    public async Task two_profiles_merge_into_the_older_and_the_merge_says_why()
    {
        await _server.SendAsync("identify", """{"anonymousId":"web-7","traits":{"email":"cara@example.com"},"messageId":"m-web"}""");
        await _server.SendAsync("identify", """{"userId":"crm-7","traits":{"phone":"+14155550107"},"messageId":"m-crm"}""");
        var older = (await _server.ProfileByAsync("email:cara@example.com"))!.Id();
        var newer = (await _server.ProfileByAsync("user_id:crm-7"))!.Id();
        Assert.NotEqual(older, newer);

        await _server.SendAsync("track", """{"userId":"crm-7","event":"Logged In","context":{"traits":{"email":"cara@example.com"}},"messageId":"m-link"}""");

        var merged = (await _server.ProfileByAsync("user_id:crm-7"))!;
        Assert.Equal(older, merged.Id());
        Assert.Equal(["anonymous_id:web-7", "email:cara@example.com", "phone:+14155550107", "user_id:crm-7"], merged.Identifiers().Order());
        Assert.Equal([newer], merged["mergedFrom"]!.AsArray().Select(m => m!.GetValue<string>()));

        var merge = Assert.Single(await _server.GetArrayAsync($"api/profiles/{older}/merges"))!;
        Assert.Equal(older, merge["survivor"]!.GetValue<string>());
        Assert.Equal(newer, merge["merged"]!.GetValue<string>());
        Assert.Equal("message m-link", merge["cause"]!.GetValue<string>());
        Assert.Equal(["user_id:crm-7", "email:cara@example.com"], merge["identifiers"]!.AsArray().Select(i => i!.GetValue<string>()));
        Assert.Contains("email:cara@example.com", merge["rule"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task a_merged_away_id_answers_with_the_survivor_and_its_events_follow()
    {
        await _server.SendAsync("track", """{"anonymousId":"dev-1","event":"Opened App"}""");
        var deviceProfile = (await _server.ProfileByAsync("anonymous_id:dev-1"))!.Id();
        await _server.SendAsync("identify", """{"userId":"owner-1"}""");
        await _server.SendAsync("alias", """{"userId":"owner-1","previousId":"dev-1"}""");

        var viaOldId = await _server.ProfileAsync(deviceProfile);
        var survivor = (await _server.ProfileByAsync("user_id:owner-1"))!.Id();

        Assert.Equal(deviceProfile, survivor); // the device profile was first, so it survives
        Assert.Contains("user_id:owner-1", viaOldId.Identifiers());
        var events = (await _server.Admin.GetFromJsonAsync<JsonObject>($"api/events?profileId={survivor}"))!["items"]!.AsArray();
        Assert.Equal(["alias", "identify", "track"], events.Select(e => e!["type"]!.GetValue<string>()));
    }

    [Fact]
    public async Task a_link_that_would_give_a_profile_two_user_ids_leaves_the_lower_priority_identifier_out()
    {
        // A shared computer: one browser (anonymous id), two people log in.
        await _server.SendAsync("identify", """{"anonymousId":"shared-pc","userId":"alice"}""");
        await _server.SendAsync("identify", """{"anonymousId":"shared-pc","userId":"bob","messageId":"m-bob"}""");

        var alice = (await _server.ProfileByAsync("user_id:alice"))!;
        var bob = (await _server.ProfileByAsync("user_id:bob"))!;
        Assert.NotEqual(alice.Id(), bob.Id());
        Assert.Contains("anonymous_id:shared-pc", alice.Identifiers());
        Assert.DoesNotContain("anonymous_id:shared-pc", bob.Identifiers());

        var decision = Assert.Single(await _server.GetArrayAsync($"api/profiles/{bob.Id()}/decisions"))!;
        Assert.Equal("dropped", decision["kind"]!.GetValue<string>());
        Assert.Equal("anonymous_id", decision["type"]!.GetValue<string>());
        Assert.Equal("message m-bob", decision["cause"]!.GetValue<string>());
        Assert.Contains("limit is 1", decision["reason"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task blocked_and_unparseable_values_are_reported_not_linked()
    {
        await _server.SendAsync("identify", """{"userId":"real-1","traits":{"email":"test@test.com","phone":"call me maybe"}}""");
        await _server.SendAsync("identify", """{"userId":"undefined","anonymousId":"anon-undefined"}""");

        var real = (await _server.ProfileByAsync("user_id:real-1"))!;
        Assert.Equal(["user_id:real-1"], real.Identifiers());
        var reasons = (await _server.GetArrayAsync($"api/profiles/{real.Id()}/decisions")).Select(d => $"{d!["type"]}: {d["reason"]}").Order().ToList();
        Assert.Equal(2, reasons.Count);
        Assert.StartsWith("email: traits.email: blocked value", reasons[0], StringComparison.Ordinal);
        Assert.StartsWith("phone: traits.phone: not a phone number", reasons[1], StringComparison.Ordinal);
        Assert.Null(await _server.ProfileByAsync("user_id:undefined"));
        Assert.Equal(["anonymous_id:anon-undefined"], (await _server.ProfileByAsync("anonymous_id:anon-undefined"))!.Identifiers());
    }

    [Fact]
    public async Task latest_trait_by_event_time_wins_and_every_value_is_kept_in_history()
    {
        await _server.SendAsync("identify", """{"userId":"t-1","traits":{"plan":"pro"},"timestamp":"2026-03-01T00:00:00Z"}""");
        await _server.SendAsync("identify", """{"userId":"t-1","traits":{"plan":"free"},"timestamp":"2026-01-01T00:00:00Z"}""");
        await _server.SendAsync("identify", """{"userId":"t-1","traits":{"plan":"enterprise"},"timestamp":"2026-05-01T00:00:00Z"}""");

        var profile = (await _server.ProfileByAsync("user_id:t-1"))!;
        Assert.Equal("enterprise", profile["traits"]!["plan"]!.GetValue<string>());
        var history = (await _server.Admin.GetFromJsonAsync<JsonObject>($"api/profiles/{profile.Id()}/traits/history"))!;
        Assert.Equal(["pro", "enterprise"], history["plan"]!.AsArray().Select(v => v!["value"]!.GetValue<string>()));
    }

    [Fact]
    public async Task bad_identifier_queries_name_the_parameter()
    {
        var missing = await _server.Admin.GetAsync("api/profiles");
        var unknownType = await _server.Admin.GetAsync("api/profiles?identifier=shoe_size:42");
        var badPhone = await _server.Admin.GetAsync("api/profiles?identifier=phone:abc");
        var none = await _server.Admin.GetAsync("api/profiles?identifier=email:nobody@example.com");

        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Equal("identifier", (await missing.Content.ReadFromJsonAsync<JsonObject>())!["field"]!.GetValue<string>());
        Assert.Contains("not configured", (await unknownType.Content.ReadFromJsonAsync<JsonObject>())!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, badPhone.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _server.Admin.GetAsync("api/profiles/prof_999999")).StatusCode);
    }

    [Fact]
    public async Task stats_count_profiles_identifiers_and_merges()
    {
        await _server.SendAsync("identify", """{"anonymousId":"s-a","traits":{"email":"s@example.com"}}""");
        await _server.SendAsync("identify", """{"userId":"s-u"}""");
        await _server.SendAsync("identify", """{"userId":"s-u","traits":{"email":"s@example.com"}}""");

        var stats = (await _server.Admin.GetFromJsonAsync<JsonObject>("api/stats"))!;

        Assert.Equal(1, stats["profiles"]!.GetValue<long>());
        Assert.Equal(3, stats["identifiers"]!.GetValue<long>());
        Assert.Equal(1, stats["merges"]!.GetValue<long>());
    }
}
