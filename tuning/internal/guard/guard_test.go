package guard

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
		{ut: 1000 * s, period: 125 * s, wantRTOMax: timers.RTOMax, wantAlive: 1000*s - 125*s - 120*s - 15*s - 10*time.Millisecond},
	} {
		p := NewParams(Settings{Options: sockopt.Options{UserTimeout: tc.ut, RTOMax: tc.rtoMax}, Armed: true})
		assert.Equal(t, tc.period, p.Period, "UT %v period", tc.ut)
		assert.Equal(t, tc.wantRTOMax, p.RTOMax, "UT %v rtoMax", tc.ut)
		assert.Equal(t, tc.wantAlive, p.Alive, "UT %v alive", tc.ut)
		// A live peer answers a probe at least every rtoMax, late by the
		// timer wheel's slack: alive must leave room for that.
		assert.Greater(t, p.Alive, p.RTOMax+timers.Slack(p.RTOMax), "UT %v: alive too short for capped probes", tc.ut)
	}
}

func TestGuardDecide(t *testing.T) {
	const ut = 4 * time.Second // period 500 ms, rtoMax 1 s, alive 2.371 s
	p := NewParams(Settings{Options: sockopt.Options{UserTimeout: ut}, Stall: 10 * time.Second, Armed: true})
	assert.Equal(t, ut/2, p.Linger, "no keepalive: the idle bound is Never either way")
	now := time.Unix(1000, 0)
	shut := func(sinceAck time.Duration, acked uint64) sockopt.Info {
		return sockopt.Info{NotSent: 1 << 20, SinceACK: sinceAck, BytesAcked: acked}
	}
	flowing := func(sinceAck time.Duration, acked uint64) sockopt.Info {
		return sockopt.Info{Unacked: 10, NotSent: 1 << 20, SinceACK: sinceAck, BytesAcked: acked}
	}
	withProbes := func(s sockopt.Info, n uint8) sockopt.Info { s.Probes = n; return s }
	armed := tickState{heard: now.Add(-time.Minute), progress: now.Add(-time.Second), acked: 100}
	for _, tc := range []struct {
		name   string
		sample sockopt.Info
		st     tickState
		want   action
	}{
		{name: "connection ended", sample: sockopt.Info{State: sockopt.StateClose, NotSent: 5}, st: armed,
			want: action{stop: true}},
		{name: "queue empty for linger: idle (the tick restores the configured timeout)", sample: sockopt.Info{},
			st:   tickState{heard: now, progress: now, acked: 100, empty: now.Add(-p.Linger)},
			want: action{idle: true}},
		{name: "queue empty for less: the guard stays armed for the next request", sample: sockopt.Info{},
			st:   tickState{heard: now, progress: now, acked: 100, empty: now.Add(-p.Linger + time.Millisecond)},
			want: action{}},
		{name: "data after a tick that saw none: no silence, no stall, older than that tick",
			sample: flowing(time.Minute, 100),
			st:     tickState{heard: now.Add(-time.Minute), progress: now.Add(-time.Minute), acked: 100, lastIdle: now.Add(-p.Period)},
			want:   action{}},
		{name: "shut, peer answers Probes: timeout stays off", sample: shut(900*time.Millisecond, 100), st: armed,
			want: action{}},
		{name: "data flowing, acks coming: timeout stays off", sample: flowing(time.Millisecond, 200), st: armed,
			want: action{}},
		{name: "shut, no answer for alive and four Probes: the configured timeout, the kernel ends it",
			sample: withProbes(shut(p.Alive+time.Millisecond, 100), shutProbes), st: armed,
			want: action{ut: ut, cut: CutSilent}},
		{name: "shut, no answer for alive but three Probes: a lossy path's live peer, the timeout stays off",
			sample: withProbes(shut(time.Minute, 100), shutProbes-1), st: armed,
			want: action{}},
		{name: "in flight, no ack for alive: the configured timeout", sample: flowing(p.Alive+time.Millisecond, 100), st: armed,
			want: action{ut: ut, cut: CutSilent}},
		{name: "the arming counts as heard: a write after a long idle is not a silence",
			sample: flowing(30*time.Second, 100), st: tickState{heard: now.Add(-time.Second), progress: now.Add(-time.Second), acked: 100},
			want: action{}},
		{name: "peer heard again after a verdict: timeout off again (0)", sample: shut(10*time.Millisecond, 100),
			st:   tickState{heard: now.Add(-time.Minute), progress: now.Add(-time.Second), acked: 100, ut: ut},
			want: action{}},
		{name: "stall: no byte acknowledged for StallTimeout, live or not", sample: shut(10*time.Millisecond, 100),
			st:   tickState{heard: now, progress: now.Add(-10 * time.Second), acked: 100},
			want: action{ut: ut, cut: CutStalled}},
		{name: "progress restarts the stall clock", sample: shut(10*time.Millisecond, 101),
			st:   tickState{heard: now, progress: now.Add(-10 * time.Second), acked: 100},
			want: action{}},
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
		assert.Equal(t, action{}, q.decide(now, sockopt.Info{NotSent: 1, SinceACK: time.Minute, Probes: 1, BytesAcked: 100}, &st))
		st = armed
		assert.Equal(t, action{ut: ut, cut: CutSilent}, q.decide(now, sockopt.Info{NotSent: 1, SinceACK: time.Minute, Probes: 2, BytesAcked: 100}, &st))
	})
}
