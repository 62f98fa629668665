package tuning

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// The send hold.
//
// Linux starts a busy connection's user timeout at its first RTO
// retransmission (retrans_stamp, set in tcp_retransmit_skb), and the RTO
// timer shares one slot with the tail-loss probe: every send of new data
// ends in tcp_schedule_loss_probe, which re-arms the slot as a probe about
// 2 SRTT ahead, and a probe that finds the RTO overdue re-arms it a jiffy
// ahead, where the next new data replaces it again. A writer that keeps
// feeding the socket faster than that, into a congestion window and a send
// buffer that an earlier burst has grown, postpones the first RTO, and so
// the user timeout's start, until no new data can leave: by as much as the
// window's segments times the write period. Nothing per socket caps that
// window.
//
// So a Conn stops feeding it once the peer has fallen silent: before a
// write, at most once per timers.HoldCheck, it reads TCP_INFO, and while data has
// been in flight for the path's own RTO and OutageGrace, nothing has been
// heard for as long and the kernel has not yet retransmitted on a timeout,
// the write waits, and the Conn's other writes with it. With no
// new data the kernel's timers play out as for a writer that stopped (a
// probe, then an RTO from it), and its clock and error are the kernel's. The write goes on
// at the first ACK (a live peer that was merely slow costs the writer
// what the kernel's own RTO would: the same wait, once), at the first RTO
// retransmission (the clock runs; in loss recovery no new data leaves), at
// the write deadline, at Close, or at the kernel's verdict, which the
// write then returns; and at the latest when that RTO is due (holdMost).
// A connection whose peer answers never waits.

// silent reports that a write should wait: data in flight for at least
// an RTO and grace (inFlight: since a sample last saw nothing in flight),
// nothing heard for as long, and no RTO retransmission yet. The flight's own age
// matters after a pause: the peer's last ACK is then as old as the pause,
// and the first ACK of the new data is still on its way.
func (s windowSample) silent(inFlight, grace time.Duration) bool {
	return !s.closed && s.unacked > 0 && s.retransmits == 0 && s.rto > 0 &&
		s.sinceAck >= s.rto+grace && inFlight >= s.rto+grace
}

// baseRTO is the path's RTO as the sample shows it before any backoff,
// or 0 if it is backed off: the kernel doubles icsk_rto at each RTO
// retransmission, and an ACK clears icsk_retransmits before a new RTT
// sample brings the RTO back (tcpi_backoff stays until then).
func (s windowSample) baseRTO() time.Duration {
	if s.retransmits != 0 || s.backoff != 0 {
		return 0
	}
	return s.rto
}

// holdMost is the longest one hold lasts, from its start, on a path whose
// RTO is rto: the hold starts an RTO or more after the last ACK, and with
// nothing new to send the kernel's first RTO comes at most a probe timeout
// (under an RTO) and an RTO later, each timer up to its slack late (see
// "Writers that stream"). Past it something the hold cannot see has happened (a write
// through NetConn or File, a deadline set there), and the write goes on.
func holdMost(rto time.Duration) time.Duration { return 2*rto + 2*timers.Slack(rto) + timers.HoldCheck }

// sendHold is a Conn's hold state.
type sendHold struct {
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

func mono() int64 { return int64(time.Since(monoEpoch)) }

// monoTime is the time.Time of mono's reading m.
func monoTime(m int64) time.Time { return monoEpoch.Add(time.Duration(m)) }

// setDeadline records the write deadline a held write must respect, on the
// monotonic clock (a deadline is a point in time; the wall clock may step).
func (h *sendHold) setDeadline(t time.Time) {
	if t.IsZero() {
		h.deadline.Store(0)
		return
	}
	h.deadline.Store(max(1, mono()+int64(time.Until(t))))
}

// wait holds a write while the peer is silent (see above). It costs one
// clock read and one atomic load per write, and one TCP_INFO read per
// timers.HoldCheck of writing, none within TCP_RTO_MIN of a sample that found
// nothing in flight; a silence shorter than an RTO and grace holds
// nothing. The hold lasts at most limit (the user timeout)
// and holdMost. While one write is held, the Conn's other writes wait
// with it: any new data would postpone the RTO the hold waits for. It
// returns the RTO its sample read, 0 if it took none, and, if its first
// sample found nothing queued or in flight, a clock reading taken just
// before it (for the guard: calmAt), else 0.
func (h *sendHold) wait(rc syscall.RawConn, limit, grace time.Duration) (rto time.Duration, empty int64) {
	if h.holding.Load() {
		h.mu.Lock()
		h.mu.Unlock() // nothing to guard: this waits for the hold to end
	}
	now := mono()
	n := h.next.Load()
	if n != 0 && time.Duration(now-h.calm.Load()) < timers.RTOMin+grace {
		// A sample found nothing in flight a moment ago: no flight is
		// yet as old as silent asks (an RTO, at least TCP_RTO_MIN unless
		// the host lowers rto_min, when the hold starts at the latest
		// this long after calm: inside Bounds' case of a 200 ms RTO). The
		// first write still samples, for the path's RTO (checkPath).
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
	sampled := mono() // a hold may have kept this write since now
	s, err := sampleWindow(rc)
	if err != nil {
		return 0, 0 // the write's to report
	}
	if s.empty() {
		empty = sampled
	}
	if s.unacked == 0 {
		h.calm.Store(now)
		return s.baseRTO(), empty
	}
	if !s.silent(time.Duration(now-h.calm.Load()), grace) || h.shut.Load() {
		return s.baseRTO(), 0
	}
	h.held.Add(1)
	end := now + int64(min(limit, holdMost(s.rto)))
	for {
		pause := int64(timers.HoldCheck)
		if dl := h.deadline.Load(); dl != 0 {
			pause = min(pause, dl-mono())
		}
		pause = min(pause, end-mono())
		if pause <= 0 {
			return s.baseRTO(), 0
		}
		time.Sleep(time.Duration(pause))
		if h.shut.Load() {
			return s.baseRTO(), 0
		}
		next, err := sampleWindow(rc)
		if err != nil {
			return s.baseRTO(), 0
		}
		if s = next; !s.silent(time.Duration(mono()-h.calm.Load()), grace) {
			return s.baseRTO(), 0
		}
	}
}
