// Package hold is the send hold: a connection's writes wait while its peer
// is silent with data in flight, so that new data does not postpone the
// kernel's first RTO, where a busy connection's user timeout starts. Why
// the kernel needs it is in tuning's package doc ("Writers that stream").
//
// It imports the standard library, internal/sockopt and timers; package
// tuning's Conn calls Wait before each write.
package hold

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// Silent reports that a write should wait: data in flight for at least an
// RTO and grace (inFlight: since a sample last saw nothing in flight),
// nothing heard for as long, and no RTO retransmission yet. The flight's
// own age matters after a pause: the peer's last ACK is then as old as the
// pause, and the first ACK of the new data is still on its way.
func Silent(s sockopt.Info, inFlight, grace time.Duration) bool {
	return !s.Closed() && s.Unacked > 0 && s.Retransmits == 0 && s.RTO > 0 &&
		s.SinceACK >= s.RTO+grace && inFlight >= s.RTO+grace
}

// baseRTO is the path's RTO as s shows it before any backoff.
func baseRTO(s sockopt.Info) time.Duration {
	return timers.BaseRTO(s.RTO, s.RTT, s.RTTVar, s.Backoff)
}

// Most is the longest one hold lasts on a path whose RTO is rto: it starts
// an RTO or more after the last ACK, and with nothing new to send the
// kernel's first RTO comes at most a probe timeout (under an RTO) and an
// RTO later, each timer up to its slack late. Past it something the hold
// cannot see has happened (a write through NetConn or File), and the write
// goes on.
func Most(rto time.Duration) time.Duration { return 2*rto + 2*timers.Slack(rto) + timers.HoldCheck }

// Hold is one connection's hold state. The zero Hold is ready; Calm it
// when the connection opens.
type Hold struct {
	next     atomic.Int64 // monotonic nanoseconds before which no sample is due
	calm     atomic.Int64 // when a sample last saw nothing in flight, monotonic
	deadline atomic.Int64 // the write deadline, monotonic nanoseconds; 0 for none
	shut     atomic.Bool  // Close was called
	holding  atomic.Bool  // a write is held: the others wait on mu
	mu       sync.Mutex   // held for as long as a hold lasts
	held     atomic.Int64 // writes that have waited, ever
}

// monoEpoch anchors the monotonic clock the hold counts in.
var monoEpoch = time.Now()

// Mono reads the hold's monotonic clock, in nanoseconds.
func Mono() int64 { return int64(time.Since(monoEpoch)) }

// MonoTime is the time.Time of Mono's reading m.
func MonoTime(m int64) time.Time { return monoEpoch.Add(time.Duration(m)) }

// Calm says that nothing of the connection's is in flight now: a flight's
// age counts from here.
func (h *Hold) Calm() { h.calm.Store(Mono()) }

// Shut ends every hold: Close was called.
func (h *Hold) Shut() { h.shut.Store(true) }

// Held is how many writes have waited, ever.
func (h *Hold) Held() int64 { return h.held.Load() }

// SetDeadline records the write deadline a held write must respect, on the
// monotonic clock (a deadline is a point in time; the wall clock may step).
func (h *Hold) SetDeadline(t time.Time) {
	if t.IsZero() {
		h.deadline.Store(0)
		return
	}
	h.deadline.Store(max(1, Mono()+int64(time.Until(t))))
}

// Wait holds a write while the peer is silent. It costs one clock read and
// one atomic load per write, and one TCP_INFO read per timers.HoldCheck of
// writing, none within TCP_RTO_MIN and grace of a sample that found nothing
// in flight. The hold lasts at most limit (the user timeout) and Most; while
// one write is held, the connection's other writes wait with it. It
// returns the RTO before backoff its sample shows (timers.BaseRTO), 0 if
// it took none, and, if its first sample found nothing queued or in
// flight, a Mono reading taken just before it, else 0.
func (h *Hold) Wait(rc syscall.RawConn, limit, grace time.Duration) (rto time.Duration, empty int64) {
	if h.holding.Load() {
		h.mu.Lock()
		h.mu.Unlock() // nothing to guard: this waits for the hold to end
	}
	now := Mono()
	n := h.next.Load()
	if n != 0 && time.Duration(now-h.calm.Load()) < timers.RTOMin+grace {
		// A sample found nothing in flight a moment ago: no flight is
		// yet as old as Silent asks (an RTO, at least TCP_RTO_MIN unless
		// the host lowers rto_min, when the hold starts at the latest
		// this long after calm: inside Bounds' case of a 200 ms RTO). The
		// first write still samples, for the path's RTO.
		return 0, 0
	}
	if now < n || !h.next.CompareAndSwap(n, now+int64(timers.HoldCheck)) {
		return 0, 0
	}
	// The other writes wait from before the sample: none slips out
	// between a silent sample and the hold.
	h.mu.Lock()
	h.holding.Store(true)
	defer func() {
		h.holding.Store(false)
		h.mu.Unlock()
	}()
	sampled := Mono() // a hold may have kept this write since now
	s, err := sockopt.Sample(rc)
	if err != nil {
		return 0, 0 // the write's to report
	}
	if s.Empty() {
		empty = sampled
	}
	if s.Unacked == 0 {
		h.calm.Store(now)
		return baseRTO(s), empty
	}
	if !Silent(s, time.Duration(now-h.calm.Load()), grace) || h.shut.Load() {
		return baseRTO(s), 0
	}
	h.held.Add(1)
	return h.hold(rc, s, now+int64(min(limit, Most(s.RTO))), grace), 0
}

// hold waits, sampling every timers.HoldCheck, until the peer answers, the
// kernel retransmits, the deadline or end passes, or Close.
func (h *Hold) hold(rc syscall.RawConn, s sockopt.Info, end int64, grace time.Duration) time.Duration {
	for {
		pause := int64(timers.HoldCheck)
		if dl := h.deadline.Load(); dl != 0 {
			pause = min(pause, dl-Mono())
		}
		pause = min(pause, end-Mono())
		if pause <= 0 {
			return baseRTO(s)
		}
		time.Sleep(time.Duration(pause))
		if h.shut.Load() {
			return baseRTO(s)
		}
		next, err := sockopt.Sample(rc)
		if err != nil {
			return baseRTO(s)
		}
		if s = next; !Silent(s, time.Duration(Mono()-h.calm.Load()), grace) {
			return baseRTO(s)
		}
	}
}
