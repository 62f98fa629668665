package hold

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

func TestHoldSilent(t *testing.T) {
	rto := 210 * time.Millisecond
	silent := sockopt.Info{Unacked: 40, SinceACK: rto, RTO: rto}
	assert.True(t, Silent(silent, rto, 0), "data in flight for an RTO, nothing heard for as long, no RTO yet: wait")
	grace := 800 * time.Millisecond
	assert.False(t, Silent(silent, rto, grace), "within OutageGrace of the RTO: write on")
	late := sockopt.Info{Unacked: 40, SinceACK: rto + grace, RTO: rto}
	assert.True(t, Silent(late, rto+grace, grace), "silent for an RTO and OutageGrace: wait")
	assert.False(t, Silent(late, rto+grace-time.Millisecond, grace), "the flight younger than an RTO and OutageGrace: write on")
	for name, c := range map[string]struct {
		s        sockopt.Info
		inFlight time.Duration
	}{
		"heard within the RTO":             {sockopt.Info{Unacked: 40, SinceACK: rto - time.Millisecond, RTO: rto}, rto},
		"nothing in flight":                {sockopt.Info{Unacked: 0, SinceACK: time.Hour, RTO: rto}, time.Hour},
		"the RTO has fired":                {sockopt.Info{Unacked: 40, Retransmits: 1, SinceACK: rto, RTO: rto}, rto},
		"the kernel ended it":              {sockopt.Info{State: sockopt.StateClose, Unacked: 40, SinceACK: rto, RTO: rto}, rto},
		"no RTO known (not Linux, ...)":    {sockopt.Info{Unacked: 40, SinceACK: rto}, rto},
		"after a pause, the first ACK due": {sockopt.Info{Unacked: 4, SinceACK: time.Minute, RTO: rto}, rto - time.Millisecond},
	} {
		assert.False(t, Silent(c.s, c.inFlight, 0), name)
	}
}

func TestHoldMost(t *testing.T) {
	// The hold starts an RTO after the last ACK at the earliest; the
	// kernel's first RTO comes within a probe timeout (under an RTO) and an
	// RTO of that, each timer up to its slack late, and a sample of
	// timers.HoldCheck may see it late.
	for _, rto := range []time.Duration{201 * time.Millisecond, time.Second, 3 * time.Second} {
		due := rto + timers.Slack(rto) + rto + timers.Slack(rto)
		assert.GreaterOrEqual(t, Most(rto), due+timers.HoldCheck, "RTO %v", rto)
		assert.Less(t, Most(rto), due+2*timers.HoldCheck, "RTO %v: and not much longer, or a write through NetConn waits for nothing", rto)
	}
}

func TestHoldDeadlineMonotonic(t *testing.T) {
	var h Hold
	h.SetDeadline(time.Now().Add(time.Second))
	left := time.Duration(h.deadline.Load() - Mono())
	assert.InDelta(t, float64(time.Second), float64(left), float64(50*time.Millisecond), "a deadline a second ahead")
	h.SetDeadline(time.Now().Add(-time.Hour))
	assert.NotZero(t, h.deadline.Load(), "a deadline in the past is still a deadline")
	assert.LessOrEqual(t, h.deadline.Load(), Mono(), "and it has passed")
	h.SetDeadline(time.Time{})
	assert.Zero(t, h.deadline.Load(), "no deadline")
}

// countingConn is a syscall.RawConn that counts Control calls and fails
// them, as a closed socket would.
type countingConn struct{ controls int }

func (c *countingConn) Control(func(fd uintptr)) error    { c.controls++; return syscall.EINVAL }
func (c *countingConn) Read(func(fd uintptr) bool) error  { return syscall.EINVAL }
func (c *countingConn) Write(func(fd uintptr) bool) error { return syscall.EINVAL }

// TestHoldSkipsCalm: the first write samples (for the path's RTO); then,
// within TCP_RTO_MIN (and the grace) of a sample that found nothing in
// flight, no flight can be old enough to hold a write, and the hold reads
// nothing; past it, it samples once per timers.HoldCheck.
func TestHoldSkipsCalm(t *testing.T) {
	var h Hold
	rc := &countingConn{}
	h.calm.Store(Mono())
	h.Wait(rc, time.Second, 0)
	assert.Equal(t, 1, rc.controls, "the first write samples")
	h.next.Store(Mono() - 1) // a sample is due
	for range 3 {
		h.Wait(rc, time.Second, 0)
	}
	assert.Equal(t, 1, rc.controls, "within TCP_RTO_MIN of calm")
	h.calm.Store(Mono() - int64(timers.RTOMin))
	h.Wait(rc, time.Second, time.Second)
	assert.Equal(t, 1, rc.controls, "within TCP_RTO_MIN and the grace of calm")
	h.Wait(rc, time.Second, 0)
	h.Wait(rc, time.Second, 0)
	assert.Equal(t, 2, rc.controls, "past it, a sample, and none again within timers.HoldCheck")
}
