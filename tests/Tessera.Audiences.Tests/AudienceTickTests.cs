using Tessera.Core.Identity;
using Tessera.Core.Profiles;

namespace Tessera.Audiences.Tests;

public sealed class AudienceTickTests
{
    [Fact]
    public async Task asking_when_the_next_tick_is_due_and_ticking_never_wait_for_the_engine_while_it_is_busy()
    {
        var clock = new GatedClock();
        var engine = new ProfileEngine(IdentityRules.Default, ProfileRules.Default) { Clock = clock };
        Assert.True(engine.TryGetNextAudienceTick(out var idle));
        Assert.Null(idle);

        // An evaluation reads the clock inside the engine: held there, the engine stays busy until the test lets it go.
        clock.Hold.Reset();
        var busy = Task.Run(() => engine.EvaluateAudiences(null, "test"));
        try
        {
            Assert.True(clock.Inside.Wait(TimeSpan.FromSeconds(10)), "the evaluation never read the clock");
            var asked = Task.Run(() => engine.TryGetNextAudienceTick(out _));
            Assert.True(await Task.WhenAny(asked, Task.Delay(TimeSpan.FromSeconds(5))) == asked, "the question waited for the busy engine");
            Assert.False(await asked);
            var ticked = Task.Run(engine.TickAudiences);
            Assert.True(await Task.WhenAny(ticked, Task.Delay(TimeSpan.FromSeconds(5))) == ticked, "the tick waited for the busy engine");
            Assert.Empty(await ticked);
        }
        finally
        {
            clock.Hold.Set();
        }

        await busy;
        Assert.True(engine.TryGetNextAudienceTick(out _));
    }

    private sealed class GatedClock : TimeProvider
    {
        public ManualResetEventSlim Inside { get; } = new(false);

        public ManualResetEventSlim Hold { get; } = new(true);

        public override DateTimeOffset GetUtcNow()
        {
            Inside.Set();
            Hold.Wait(TimeSpan.FromSeconds(30));
            return base.GetUtcNow();
        }
    }
}
