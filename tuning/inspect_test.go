package tuning

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		{"idle, a keepalive probe unanswered past Idle+RTO", with(func(s *Snapshot) {
			s.Probes, s.SinceACK, s.SinceDataReceived = 1, 1500*time.Millisecond, time.Minute
		}), Suspected, idle - 1500*time.Millisecond},
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
		{"busy, an RTO fired", with(func(s *Snapshot) {
			s.UnackedSegments, s.Retransmits, s.SinceACK, s.SinceDataSent = 4, 1, 700*time.Millisecond, 600*time.Millisecond
		}), Suspected, busy - rto - 600*time.Millisecond},
		{"busy, five RTOs fired: they took 6.2 s at least, the last 4.7 s ago", with(func(s *Snapshot) {
			s.Options = c20
			s.UnackedSegments, s.Retransmits, s.Backoff, s.RTO = 3, 5, 5, 32*200*time.Millisecond
			s.SinceACK, s.SinceDataSent = 11*time.Second, 4700*time.Millisecond
		}), Suspected, busy20 - 6200*time.Millisecond - 4700*time.Millisecond},
		{"busy, no ACK for longer than the RTO", with(func(s *Snapshot) { s.UnackedSegments, s.SinceACK, s.SinceDataSent = 1, rto+time.Millisecond, time.Hour }),
			Suspected, busy - rto - time.Millisecond},
		{"shut window, peer answers: stalled, cut within UT unguarded", with(func(s *Snapshot) {
			s.NotSentBytes, s.SinceACK, s.SinceDataSent = 1<<20, 300*time.Millisecond, 5*time.Second
		}), WindowStalled, c.UserTimeout + timerSlack(c.UserTimeout)},
		{"shut window, one probe out: may be in flight, still stalled", with(func(s *Snapshot) {
			s.NotSentBytes, s.Probes, s.SinceACK, s.SinceDataSent = 1<<20, 1, time.Second, 5*time.Second
		}), WindowStalled, c.UserTimeout + timerSlack(c.UserTimeout)},
		{"shut window, two probes unanswered past the RTO", with(func(s *Snapshot) {
			s.NotSentBytes, s.Probes, s.SinceACK, s.SinceDataSent = 1<<20, 2, time.Second, 5*time.Second
		}), Suspected, c.UserTimeout + timerSlack(c.UserTimeout)},
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
