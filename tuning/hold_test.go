package tuning

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

func TestHoldSilent(t *testing.T) {
	rto := 210 * time.Millisecond
	silent := windowSample{unacked: 40, sinceAck: rto, rto: rto}
	assert.True(t, silent.silent(rto, 0), "data in flight for an RTO, nothing heard for as long, no RTO yet: wait")
	grace := 800 * time.Millisecond
	assert.False(t, silent.silent(rto, grace), "within OutageGrace of the RTO: write on")
	late := windowSample{unacked: 40, sinceAck: rto + grace, rto: rto}
	assert.True(t, late.silent(rto+grace, grace), "silent for an RTO and OutageGrace: wait")
	assert.False(t, late.silent(rto+grace-time.Millisecond, grace), "the flight younger than an RTO and OutageGrace: write on")
	for name, c := range map[string]struct {
		s        windowSample
		inFlight time.Duration
	}{
		"heard within the RTO":             {windowSample{unacked: 40, sinceAck: rto - time.Millisecond, rto: rto}, rto},
		"nothing in flight":                {windowSample{unacked: 0, sinceAck: time.Hour, rto: rto}, time.Hour},
		"the RTO has fired":                {windowSample{unacked: 40, retransmits: 1, sinceAck: rto, rto: rto}, rto},
		"the kernel ended it":              {windowSample{closed: true, unacked: 40, sinceAck: rto, rto: rto}, rto},
		"no RTO known (not Linux, ...)":    {windowSample{unacked: 40, sinceAck: rto}, rto},
		"after a pause, the first ACK due": {windowSample{unacked: 4, sinceAck: time.Minute, rto: rto}, rto - time.Millisecond},
	} {
		assert.False(t, c.s.silent(c.inFlight, 0), name)
	}
}

func TestHoldMost(t *testing.T) {
	// The hold starts an RTO after the last ACK at the earliest; the
	// kernel's first RTO comes within a probe timeout (under an RTO) and an
	// RTO of that, each timer up to its slack late, and a sample of
	// timers.HoldCheck may see it late.
	for _, rto := range []time.Duration{201 * time.Millisecond, time.Second, 3 * time.Second} {
		due := rto + timers.Slack(rto) + rto + timers.Slack(rto)
		assert.GreaterOrEqual(t, holdMost(rto), due+timers.HoldCheck, "RTO %v", rto)
		assert.Less(t, holdMost(rto), due+2*timers.HoldCheck, "RTO %v: and not much longer, or a write through NetConn waits for nothing", rto)
	}
}

func TestHoldDeadlineMonotonic(t *testing.T) {
	var h sendHold
	h.setDeadline(time.Now().Add(time.Second))
	left := time.Duration(h.deadline.Load() - mono())
	assert.InDelta(t, float64(time.Second), float64(left), float64(50*time.Millisecond), "a deadline a second ahead")
	h.setDeadline(time.Now().Add(-time.Hour))
	assert.NotZero(t, h.deadline.Load(), "a deadline in the past is still a deadline")
	assert.LessOrEqual(t, h.deadline.Load(), mono(), "and it has passed")
	h.setDeadline(time.Time{})
	assert.Zero(t, h.deadline.Load(), "no deadline")
}
