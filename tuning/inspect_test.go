package tuning

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

func TestVerdictAndEndsIn(t *testing.T) {
	c, err := ForBudget(3 * time.Second)
	require.NoError(t, err)
	idle, busy := c.Bounds()
	c20, err := ForBudget(20 * time.Second)
	require.NoError(t, err)
	_, busy20 := c20.Bounds()
	const rto = 204 * time.Millisecond
	base := Snapshot{State: TCPEstablished, RTO: rto, Options: c, OptionsKnown: true}
	with := func(f func(*Snapshot)) Snapshot { s := base; f(&s); return s }
	noKA := c
	noKA.KeepAlive.Enable = false
	for _, tc := range []struct {
		name    string
		s       Snapshot
		verdict Verdict
		endsIn  time.Duration
	}{
		{"idle, heard 400 ms ago", with(func(s *Snapshot) { s.SinceACK, s.SinceDataReceived = 400*time.Millisecond, 2*time.Second }),
			Alive, idle - 400*time.Millisecond},
		{"idle, one keepalive probe unanswered: it may be in flight, or lost", with(func(s *Snapshot) {
			s.Probes, s.SinceACK, s.SinceDataReceived = 1, 1500*time.Millisecond, time.Minute
		}), Alive, idle - 1500*time.Millisecond},
		{"idle, two keepalive probes unanswered", with(func(s *Snapshot) {
			s.Probes, s.SinceACK, s.SinceDataReceived = 2, 2*time.Second, time.Minute
		}), Suspected, idle - 2*time.Second},
		{"idle, a probe just out (within the RTO): not yet suspected", with(func(s *Snapshot) {
			s.Probes, s.SinceACK, s.SinceDataReceived = 1, time.Second+rto/2, time.Minute
		}), Alive, idle - time.Second - rto/2},
		{"idle past its bound: the kernel acts at its next timer", with(func(s *Snapshot) { s.SinceACK, s.SinceDataReceived = time.Hour, time.Hour }),
			Alive, 0},
		{"idle, keepalive off: unwatched, never ended", with(func(s *Snapshot) { s.Options = noKA; s.SinceACK = time.Hour }),
			Unwatched, Never},
		{"busy, acked just now", with(func(s *Snapshot) {
			s.UnackedSegments, s.SinceACK, s.SinceDataSent = 4, 2*time.Millisecond, time.Millisecond
		}),
			Alive, busy - time.Millisecond},
		{"busy, one RTO fired: a lost segment, or the peer gone", with(func(s *Snapshot) {
			s.UnackedSegments, s.Retransmits, s.Backoff, s.RTO = 4, 1, 1, 2*rto
			s.SinceACK, s.SinceDataSent = 700*time.Millisecond, 100*time.Millisecond
		}), Alive, busy - rto - 100*time.Millisecond},
		{"busy, two RTOs fired", with(func(s *Snapshot) {
			s.UnackedSegments, s.Retransmits, s.Backoff, s.RTO = 4, 2, 2, 4*rto
			s.SinceACK, s.SinceDataSent = 900*time.Millisecond, 100*time.Millisecond
		}), Suspected, busy - 3*rto - 100*time.Millisecond},
		{"busy, five RTOs fired: they took 6.2 s at least, the last send 1 s ago", with(func(s *Snapshot) {
			s.Options = c20
			s.UnackedSegments, s.Retransmits, s.Backoff, s.RTO = 3, 5, 5, 32*200*time.Millisecond
			s.SinceACK, s.SinceDataSent = 11*time.Second, time.Second
		}), Suspected, busy20 - 6200*time.Millisecond - time.Second},
		{"busy, five RTOs fired, the last send 4.7 s ago: EndsIn's estimate adds it (Unanswered would not)", with(func(s *Snapshot) {
			s.Options = c20
			s.UnackedSegments, s.Retransmits, s.Backoff, s.RTO = 3, 5, 5, 32*200*time.Millisecond
			s.SinceACK, s.SinceDataSent = 11*time.Second, 4700*time.Millisecond
		}), Suspected, busy20 - 6200*time.Millisecond - 4700*time.Millisecond},
		{"busy after an hour idle, its request just sent: its answer is on the way", with(func(s *Snapshot) {
			s.UnackedSegments, s.SinceACK, s.SinceDataReceived, s.SinceDataSent = 1, time.Hour, time.Hour, 50*time.Millisecond
		}), Alive, busy - 50*time.Millisecond},
		{"shut window, peer answers: stalled, cut within UT unguarded", with(func(s *Snapshot) {
			s.NotSentBytes, s.SinceACK, s.SinceDataSent = 1<<20, 300*time.Millisecond, 5*time.Second
		}), WindowStalled, c.UserTimeout + timers.Slack(c.UserTimeout)},
		{"shut window, one probe out: may be in flight, still stalled", with(func(s *Snapshot) {
			s.NotSentBytes, s.Probes, s.SinceACK, s.SinceDataSent = 1<<20, 1, time.Second, 5*time.Second
		}), WindowStalled, c.UserTimeout + timers.Slack(c.UserTimeout)},
		{"shut window, two probes unanswered past the RTO", with(func(s *Snapshot) {
			s.NotSentBytes, s.Probes, s.SinceACK, s.SinceDataSent = 1<<20, 2, time.Second, 5*time.Second
		}), Suspected, c.UserTimeout + timers.Slack(c.UserTimeout)},
		{"shut window, guarded: only a silent peer ends it, within GuardBound", with(func(s *Snapshot) {
			s.Guarded, s.NotSentBytes, s.SinceACK, s.SinceDataSent = true, 1<<20, 300*time.Millisecond, 5*time.Second
		}), WindowStalled, c.GuardBound() - 300*time.Millisecond},
		{"ended", with(func(s *Snapshot) { s.State = TCPClosed; s.UnackedSegments = 3 }), Ended, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.verdict, tc.s.Verdict())
			assert.Equal(t, tc.endsIn, tc.s.EndsIn())
		})
	}
}

func TestSnapshotJSONNames(t *testing.T) {
	b, err := json.Marshal(struct {
		S TCPState
		V Verdict
		C Cause
	}{TCPEstablished, WindowStalled, CauseReapedBusy})
	require.NoError(t, err)
	assert.JSONEq(t, `{"S":"ESTABLISHED","V":"window-stalled","C":"reaped_busy"}`, string(b))
	var back struct {
		S TCPState
		V Verdict
		C Cause
	}
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, TCPEstablished, back.S)
	assert.Equal(t, WindowStalled, back.V)
	assert.Equal(t, CauseReapedBusy, back.C)
	assert.Error(t, json.Unmarshal([]byte(`{"V":"zombie"}`), &back))
	assert.Equal(t, "TCPState(99)", TCPState(99).String())
}

// jiffies is what Unanswered allows for n timers each firing up to a
// jiffy early (HZ=100's).
func jiffies(n int) time.Duration { return time.Duration(n) * 10 * time.Millisecond }

// Unanswered never counts the time since the peer was last heard from,
// and never exceeds what the kernel's counters prove.
func TestUnanswered(t *testing.T) {
	c, err := ForBudget(10 * time.Second)
	require.NoError(t, err)
	const rto = 300 * time.Millisecond
	for _, tc := range []struct {
		name  string
		s     Snapshot
		tries int
		want  time.Duration
	}{
		{"idle an hour, a request just sent", Snapshot{UnackedSegments: 1, RTO: rto, SinceACK: time.Hour, SinceDataReceived: time.Hour,
			SinceDataSent: 20 * time.Millisecond}, 0, 20 * time.Millisecond},
		{"idle an hour, its first keepalive probe out", Snapshot{Probes: 1, RTO: rto, SinceACK: time.Hour, SinceDataReceived: time.Hour,
			Options: c, OptionsKnown: true}, 1, 0},
		{"three keepalive probes, options read", Snapshot{Probes: 3, RTO: rto, SinceACK: time.Hour, Options: c, OptionsKnown: true},
			3, 2 * c.KeepAlive.Interval},
		{"three keepalive probes, options unknown: the kernel's least interval", Snapshot{Probes: 3, RTO: rto, SinceACK: time.Hour,
			Options: Config{KeepAlive: net.KeepAliveConfig{Enable: true, Interval: 75 * time.Second}}}, 3, 2 * time.Second},
		{"three zero-window probes", Snapshot{Probes: 3, NotSentBytes: 1 << 20, RTO: rto, SinceACK: time.Hour}, 3, 2 * rto},
		{"four RTOs, uncapped: exact", Snapshot{UnackedSegments: 2, Retransmits: 4, Backoff: 4, RTO: 16 * rto,
			SinceACK: time.Hour, SinceDataSent: 300 * time.Millisecond}, 4, 15*rto + 300*time.Millisecond - jiffies(4)},
		{"eight RTOs that found no route: nothing sent since the first, never counted twice", Snapshot{UnackedSegments: 1,
			Retransmits: 8, Backoff: 8, RTO: 76800 * time.Millisecond, SinceACK: time.Hour, SinceDataSent: 76500 * time.Millisecond},
			8, 76500 * time.Millisecond},
		{"six RTOs, four of them dropped by the local queue: 500 ms each", Snapshot{UnackedSegments: 2, Retransmits: 6, Backoff: 2,
			RTO: 4 * rto, SinceACK: time.Hour}, 6, 3*rto + 4*rto - jiffies(6)},
		{"many RTOs, but a SACK came 2 s ago: no longer than that", Snapshot{UnackedSegments: 2, Retransmits: 8, Backoff: 8,
			RTO: 256 * rto, SinceACK: 2 * time.Second}, 8, 2 * time.Second},
		{"ten RTOs at a 120 s cap: short of the truth, never past it", Snapshot{UnackedSegments: 2, Retransmits: 10, Backoff: 10,
			RTO: 120 * time.Second, SinceACK: time.Hour}, 10, 120*time.Second - 120*time.Second/1024 - jiffies(10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.tries, tc.s.Tries())
			assert.InDelta(t, float64(tc.want), float64(tc.s.Unanswered()), float64(time.Microsecond))
		})
	}
}
