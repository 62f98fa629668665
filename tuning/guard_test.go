package tuning

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// An armed guard rests for half the user timeout where a user timeout of
// 0 leaves the idle bound as it is, and otherwise gives it back before
// keepalive's first probe.
func TestGuardLinger(t *testing.T) {
	c, err := ForBudget(5 * time.Second)
	assert.NoError(t, err)
	assert.Equal(t, c.UserTimeout/2, c.guardParams().Linger, "ForBudget: Count ends an idle connection as soon")
	c.KeepAlive.Count = 9 // with a user timeout of 0, nine Probes: a longer idle bound
	p := c.guardParams()
	assert.Equal(t, max(0, c.KeepAlive.Idle/2-p.Period), p.Linger)
	assert.Less(t, p.Linger+p.Period, c.KeepAlive.Idle, "the configured timeout is back before the first probe")
}

func TestGuardBound(t *testing.T) {
	c, err := ForBudget(20 * time.Second)
	assert.NoError(t, err)
	_, busy := c.Bounds()
	p := c.guardParams()
	// alive + period + rtoMax + slack is the user timeout: under the busy bound.
	assert.LessOrEqual(t, p.VerdictBy(), c.UserTimeout+time.Millisecond)
	assert.Equal(t, busy, c.GuardBound())
	c.RTOMax = 120 * time.Second // a cap too long for the budget shows in the bound
	p = c.guardParams()
	probes := time.Duration(p.Probes) * (120*time.Second + timers.Slack(120*time.Second))
	assert.Equal(t, max(p.Alive, probes)+p.Period+120*time.Second+timers.Slack(120*time.Second), c.GuardBound())
	// Below a budget of 7 s, four capped probes take longer than the busy
	// bound: the figures GuardBound's doc gives.
	for budget, want := range map[time.Duration]time.Duration{3 * time.Second: 5925 * time.Millisecond,
		5 * time.Second: 6175 * time.Millisecond, 7 * time.Second: 6930 * time.Millisecond} {
		c, err := ForBudget(budget)
		assert.NoError(t, err)
		assert.Equal(t, want, c.GuardBound(), "ForBudget(%v)", budget)
	}
	assert.Equal(t, Never, c.StallBound())
	c.RTOMax = 0
	c.StallTimeout = time.Minute
	p = c.guardParams()
	assert.Equal(t, time.Minute+2*p.Period+p.RTOMax+timers.Slack(p.RTOMax), c.StallBound())
}
