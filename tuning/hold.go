package tuning

import (
	"sync/atomic"
	"syscall"
	"time"
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
// write, at most once per holdCheck, it reads TCP_INFO, and while data is
// unacknowledged, nothing has been heard for the path's own RTO and the
// kernel has not yet retransmitted on a timeout, the write waits. With no
// new data the kernel's timers play out as for a writer that stopped (a
// probe, then an RTO from it), and its clock and error are the kernel's. The write goes on
// at the first ACK (a live peer that was merely slow costs the writer
// what the kernel's own RTO would: the same wait, once), at the first RTO
// retransmission (the clock runs; in loss recovery no new data leaves), at
// the write deadline, at Close, or at the kernel's verdict, which the
// write then returns. A connection whose peer answers never waits.

// holdCheck is how often a writing Conn reads TCP_INFO, and how often a
// held write looks again.
const holdCheck = 10 * time.Millisecond

// silent reports that a write should wait: data in flight, nothing heard
// for an RTO, and no RTO retransmission yet.
func (s windowSample) silent() bool {
	return !s.closed && s.unacked > 0 && s.retransmits == 0 && s.rto > 0 && s.sinceAck >= s.rto
}

// sendHold is a Conn's hold state.
type sendHold struct {
	next     atomic.Int64 // monotonic nanoseconds before which no sample is due
	deadline atomic.Int64 // the write deadline, Unix nanoseconds; 0 for none
	shut     atomic.Bool  // Close was called
	held     atomic.Int64 // writes that have waited, ever
}

// monoEpoch anchors the monotonic clock the hold counts in.
var monoEpoch = time.Now()

func mono() int64 { return int64(time.Since(monoEpoch)) }

// setDeadline records the write deadline a held write must respect.
func (h *sendHold) setDeadline(t time.Time) {
	if t.IsZero() {
		h.deadline.Store(0)
		return
	}
	h.deadline.Store(t.UnixNano())
}

// wait holds a write while s reports the peer silent (see above). It costs
// one clock read per write, and one TCP_INFO read per holdCheck of writing.
// The hold lasts at most limit (the user timeout): the kernel has decided
// by then.
func (h *sendHold) wait(rc syscall.RawConn, limit time.Duration) {
	now := mono()
	n := h.next.Load()
	if now < n || !h.next.CompareAndSwap(n, now+int64(holdCheck)) {
		return
	}
	start := time.Now()
	for counted := false; ; {
		s, err := sampleWindow(rc)
		if err != nil || !s.silent() || h.shut.Load() {
			return // an error is the write's to report
		}
		pause := holdCheck
		if dl := h.deadline.Load(); dl != 0 {
			left := time.Until(time.Unix(0, dl))
			if left <= 0 {
				return
			}
			pause = min(pause, left)
		}
		if time.Since(start) >= limit {
			return
		}
		if !counted {
			h.held.Add(1)
			counted = true
		}
		time.Sleep(pause)
	}
}
