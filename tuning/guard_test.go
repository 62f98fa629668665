package tuning

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

func TestGuardParams(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		ut, rtoMax                    time.Duration
		period, wantRTOMax, wantAlive time.Duration
	}{
		{ut: 3 * s, period: 375 * time.Millisecond, wantRTOMax: s, wantAlive: 1500 * time.Millisecond},
		// 20 s - 2.5 s - 2.5 s - (2.5 s/8 + 10 ms)
		{ut: 20 * s, period: 2500 * time.Millisecond, wantRTOMax: 2500 * time.Millisecond, wantAlive: 14677500 * time.Microsecond},
		{ut: 20 * s, rtoMax: 2 * s, period: 2500 * time.Millisecond, wantRTOMax: 2 * s, wantAlive: 15240 * time.Millisecond},
		{ut: 1000 * s, period: 125 * s, wantRTOMax: MaxRTOMax, wantAlive: 1000*s - 125*s - 120*s - 15*s - 10*time.Millisecond},
	} {
		p := newGuardParams(kernelOptions{k: sockopt.Options{UserTimeout: tc.ut, RTOMax: tc.rtoMax}})
		assert.Equal(t, tc.period, p.period, "UT %v period", tc.ut)
		assert.Equal(t, tc.wantRTOMax, p.rtoMax, "UT %v rtoMax", tc.ut)
		assert.Equal(t, tc.wantAlive, p.alive, "UT %v alive", tc.ut)
		// A live peer answers a probe at least every rtoMax, late by the
		// timer wheel's slack: alive must leave room for that.
		assert.Greater(t, p.alive, p.rtoMax+timers.Slack(p.rtoMax), "UT %v: alive too short for capped probes", tc.ut)
	}
}

func TestGuardDecide(t *testing.T) {
	const ut = 4 * time.Second // period 500 ms, rtoMax 1 s, alive 2.371 s
	p := newGuardParams(kernelOptions{k: sockopt.Options{UserTimeout: ut}, stall: 10 * time.Second})
	assert.Equal(t, ut/2, p.linger, "no keepalive: the idle bound is Never either way")
	now := time.Unix(1000, 0)
	shut := func(sinceAck time.Duration, acked uint64) sockopt.Info {
		return sockopt.Info{NotSent: 1 << 20, SinceACK: sinceAck, BytesAcked: acked}
	}
	flowing := func(sinceAck time.Duration, acked uint64) sockopt.Info {
		return sockopt.Info{Unacked: 10, NotSent: 1 << 20, SinceACK: sinceAck, BytesAcked: acked}
	}
	withProbes := func(s sockopt.Info, n uint8) sockopt.Info { s.Probes = n; return s }
	armed := guardState{heard: now.Add(-time.Minute), progress: now.Add(-time.Second), acked: 100}
	for _, tc := range []struct {
		name   string
		sample sockopt.Info
		st     guardState
		want   guardAction
	}{
		{name: "connection ended", sample: sockopt.Info{State: sockopt.StateClose, NotSent: 5}, st: armed,
			want: guardAction{stop: true}},
		{name: "queue empty for linger: idle (the tick restores the configured timeout)", sample: sockopt.Info{},
			st:   guardState{heard: now, progress: now, acked: 100, empty: now.Add(-p.linger)},
			want: guardAction{idle: true}},
		{name: "queue empty for less: the guard stays armed for the next request", sample: sockopt.Info{},
			st:   guardState{heard: now, progress: now, acked: 100, empty: now.Add(-p.linger + time.Millisecond)},
			want: guardAction{}},
		{name: "data after a tick that saw none: no silence, no stall, older than that tick",
			sample: flowing(time.Minute, 100),
			st:     guardState{heard: now.Add(-time.Minute), progress: now.Add(-time.Minute), acked: 100, lastIdle: now.Add(-p.period)},
			want:   guardAction{}},
		{name: "shut, peer answers Probes: timeout stays off", sample: shut(900*time.Millisecond, 100), st: armed,
			want: guardAction{}},
		{name: "data flowing, acks coming: timeout stays off", sample: flowing(time.Millisecond, 200), st: armed,
			want: guardAction{}},
		{name: "shut, no answer for alive and four Probes: the configured timeout, the kernel ends it",
			sample: withProbes(shut(p.alive+time.Millisecond, 100), guardProbes), st: armed,
			want: guardAction{ut: ut, cut: cutSilent}},
		{name: "shut, no answer for alive but three Probes: a lossy path's live peer, the timeout stays off",
			sample: withProbes(shut(time.Minute, 100), guardProbes-1), st: armed,
			want: guardAction{}},
		{name: "in flight, no ack for alive: the configured timeout", sample: flowing(p.alive+time.Millisecond, 100), st: armed,
			want: guardAction{ut: ut, cut: cutSilent}},
		{name: "the arming counts as heard: a write after a long idle is not a silence",
			sample: flowing(30*time.Second, 100), st: guardState{heard: now.Add(-time.Second), progress: now.Add(-time.Second), acked: 100},
			want: guardAction{}},
		{name: "peer heard again after a verdict: timeout off again (0)", sample: shut(10*time.Millisecond, 100),
			st:   guardState{heard: now.Add(-time.Minute), progress: now.Add(-time.Second), acked: 100, ut: ut},
			want: guardAction{}},
		{name: "stall: no byte acknowledged for StallTimeout, live or not", sample: shut(10*time.Millisecond, 100),
			st:   guardState{heard: now, progress: now.Add(-10 * time.Second), acked: 100},
			want: guardAction{ut: ut, cut: cutStalled}},
		{name: "progress restarts the stall clock", sample: shut(10*time.Millisecond, 101),
			st:   guardState{heard: now, progress: now.Add(-10 * time.Second), acked: 100},
			want: guardAction{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			got := p.decide(now, tc.sample, &st)
			assert.Equal(t, tc.want, got)
		})
	}

	t.Run("no RTO cap: a shut window waits for two unanswered probes", func(t *testing.T) {
		q := p
		q.uncapped()
		st := armed
		assert.Equal(t, guardAction{}, q.decide(now, sockopt.Info{NotSent: 1, SinceACK: time.Minute, Probes: 1, BytesAcked: 100}, &st))
		st = armed
		assert.Equal(t, guardAction{ut: ut, cut: cutSilent}, q.decide(now, sockopt.Info{NotSent: 1, SinceACK: time.Minute, Probes: 2, BytesAcked: 100}, &st))
	})
}

// An armed guard rests for half the user timeout where a user timeout of
// 0 leaves the idle bound as it is, and otherwise gives it back before
// keepalive's first probe.
func TestGuardLinger(t *testing.T) {
	c, err := ForBudget(5 * time.Second)
	assert.NoError(t, err)
	assert.Equal(t, c.UserTimeout/2, c.guardParams().linger, "ForBudget: Count ends an idle connection as soon")
	c.KeepAlive.Count = 9 // with a user timeout of 0, nine Probes: a longer idle bound
	p := c.guardParams()
	assert.Equal(t, max(0, c.KeepAlive.Idle/2-p.period), p.linger)
	assert.Less(t, p.linger+p.period, c.KeepAlive.Idle, "the configured timeout is back before the first probe")
}

func TestGuardBound(t *testing.T) {
	c, err := ForBudget(20 * time.Second)
	assert.NoError(t, err)
	_, busy := c.Bounds()
	p := c.guardParams()
	// alive + period + rtoMax + slack is the user timeout: under the busy bound.
	assert.LessOrEqual(t, p.verdictBy(), c.UserTimeout+time.Millisecond)
	assert.Equal(t, busy, c.GuardBound())
	c.RTOMax = 120 * time.Second // a cap too long for the budget shows in the bound
	p = c.guardParams()
	probes := guardProbes * (120*time.Second + timers.Slack(120*time.Second))
	assert.Equal(t, max(p.alive, probes)+p.period+120*time.Second+timers.Slack(120*time.Second), c.GuardBound())
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
	assert.Equal(t, time.Minute+2*p.period+p.rtoMax+timers.Slack(p.rtoMax), c.StallBound())
}
