using Tessera.Testing;

namespace Tessera.Profiles.Tests;

/// <summary>The seed scenario: five touchpoints of one person, online and offline, end as one profile; and it survives a restart.</summary>
public sealed class SeedScenarioTests
{
    private const string Rules = """
        {
          "defaultRegion": "CN",
          "types": [
            { "type": "user_id", "priority": 100, "maxPerProfile": 1, "paths": ["userId"] },
            { "type": "wechat_unionid", "priority": 90, "maxPerProfile": 1, "paths": ["traits.wechat_unionid", "context.traits.wechat_unionid"] },
            { "type": "email", "priority": 80, "maxPerProfile": 5, "normalize": "email", "paths": ["traits.email", "context.traits.email"] },
            { "type": "phone", "priority": 70, "maxPerProfile": 5, "normalize": "phone", "paths": ["traits.phone", "context.traits.phone"] },
            { "type": "loyalty_id", "priority": 60, "maxPerProfile": 1, "paths": ["properties.loyalty_id"], "blockedPatterns": ["^TEST-"] },
            { "type": "anonymous_id", "priority": 10, "maxPerProfile": 1000, "paths": ["anonymousId"] }
          ]
        }
        """;

    [Fact]
    public async Task web_visitor_app_user_wechat_follower_sales_lead_and_store_buyer_become_one_profile()
    {
        var dataDir = TempDirectory.Create("seed");
        var rulesFile = Path.Combine(dataDir, "identity.json");
        await File.WriteAllTextAsync(rulesFile, Rules);
        string profileId;
        await using (var server = await TestServer.StartAsync(dataDir, o => o.IdentityRulesFile = rulesFile))
        {
            // 1. A web visitor browses anonymously.
            await server.SendAsync("page", """{"anonymousId":"web-cookie-1","name":"Spring Sale"}""");
            // 2. They install the app and log in (the app has its own device id).
            await server.SendAsync("identify", """{"anonymousId":"app-device-1","userId":"u-1001","traits":{"email":"li.wei@example.com"}}""");
            // 3. They follow the brand on WeChat; the mini program knows their union id and phone.
            await server.SendAsync("identify", """{"anonymousId":"wx-session-9","traits":{"wechat_unionid":"oUnion-777","phone":"138 0013 8000"}}""");
            // 4. Sales logs them as a lead: email and WeChat union id, from the CRM's source.
            await server.SendAsync("identify", """{"anonymousId":"crm-lead-55","traits":{"email":"LI.WEI@example.com","wechat_unionid":"oUnion-777","title":"Buyer"}}""");
            // 5. They buy in a store: the till knows only the phone number and a loyalty card.
            await server.SendAsync("track", """{"anonymousId":"pos-till-3","event":"Order Completed","context":{"traits":{"phone":"+86 138 0013 8000"}},"properties":{"revenue":399,"loyalty_id":"L-42"}}""");
            // The web visitor logs in on the website later: that ties the cookie to the rest.
            await server.SendAsync("identify", """{"anonymousId":"web-cookie-1","userId":"u-1001"}""");

            var profile = (await server.ProfileByAsync("user_id:u-1001"))!;
            profileId = profile.Id();
            Assert.Equal(
                ["anonymous_id:app-device-1", "anonymous_id:crm-lead-55", "anonymous_id:pos-till-3", "anonymous_id:web-cookie-1", "anonymous_id:wx-session-9",
                 "email:li.wei@example.com", "loyalty_id:L-42", "phone:+8613800138000", "user_id:u-1001", "wechat_unionid:oUnion-777"],
                profile.Identifiers().Order());
            foreach (var identifier in new[] { "phone:13800138000", "wechat_unionid:oUnion-777", "loyalty_id:L-42", "anonymous_id:web-cookie-1" })
            {
                Assert.Equal(profileId, (await server.ProfileByAsync(identifier))!.Id());
            }

            Assert.Equal("Buyer", profile["traits"]!["title"]!.GetValue<string>());
            Assert.Equal(6, (await server.Admin.GetFromJsonAsyncObject($"api/profiles/{profileId}/events"))["items"]!.AsArray().Count);
        }

        // After a restart the graph is rebuilt from the store: same profile, same identifiers, same merges.
        await using var restarted = await TestServer.StartAsync(dataDir, o => o.IdentityRulesFile = rulesFile);
        var again = (await restarted.ProfileByAsync("loyalty_id:L-42"))!;
        Assert.Equal(profileId, again.Id());
        Assert.Equal(10, again.Identifiers().Count);
        Assert.NotEmpty(await restarted.GetArrayAsync($"api/profiles/{profileId}/merges"));
    }

    [Fact]
    public async Task a_bad_rules_file_stops_start_up_naming_the_entry()
    {
        var dir = TempDirectory.Create("bad-rules");
        var rulesFile = Path.Combine(dir, "identity.json");
        await File.WriteAllTextAsync(rulesFile, """{"types":[{"type":"email","maxPerProfile":0}]}""");

        var error = await Assert.ThrowsAsync<ArgumentException>(() => TestServer.StartAsync(dir, o => o.IdentityRulesFile = rulesFile));

        Assert.Contains("types[0].maxPerProfile must be at least 1", error.Message, StringComparison.Ordinal);
    }
}
