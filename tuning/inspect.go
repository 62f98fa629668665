package tuning

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// TCPState is a connection's state as the kernel names it
// (include/net/tcp_states.h).
type TCPState uint8

// The states a Snapshot reports; TCPClosed is a connection the kernel has
// ended (or never opened).
const (
	TCPEstablished TCPState = 1 + iota
	TCPSynSent
	TCPSynRecv
	TCPFinWait1
	TCPFinWait2
	TCPTimeWait
	TCPClosed
	TCPCloseWait
	TCPLastAck
	TCPListen
	TCPClosing
	TCPNewSynRecv
)

var tcpStateNames = [...]string{"", "ESTABLISHED", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2",
	"TIME-WAIT", "CLOSE", "CLOSE-WAIT", "LAST-ACK", "LISTEN", "CLOSING", "NEW-SYN-RECV"}

// String is the name ss(8) prints for s.
func (s TCPState) String() string {
	if int(s) < len(tcpStateNames) && s != 0 {
		return tcpStateNames[s]
	}
	return fmt.Sprintf("TCPState(%d)", s)
}

// Snapshot is what the kernel knows about one connection's liveness at one
// instant, as getsockopt(TCP_INFO) reports it (tcp(7)), with the options
// in force. Inspect and InspectRawConn take one; a census (ghostscan)
// fills one from sock_diag. Its Verdict and EndsIn apply Bounds' rules to
// it and need no system call.
type Snapshot struct {
	State TCPState

	// RTT and RTTVar are the smoothed round-trip time and its variance;
	// RTO is the retransmission timeout now in force, backoff included.
	RTT, RTTVar, RTO time.Duration

	// UnackedSegments is segments sent and not yet acknowledged
	// (tcpi_unacked: the kernel's packets_out). UnackedBytes is those
	// bytes (SIOCOUTQ, or sock_diag's write queue, less NotSentBytes; a
	// FIN counts as one), and NotSentBytes the bytes written but not yet
	// sent (held back by the peer's window, congestion control or Nagle).
	UnackedSegments uint32
	UnackedBytes    uint32
	NotSentBytes    uint32

	// Retransmits is how many retransmission timeouts in a row have fired
	// without an ACK (icsk_retransmits); Probes how many keepalive or
	// zero-window probes went out since the peer last answered
	// (icsk_probes_out).
	Retransmits uint8
	Probes      uint8
	// Backoff is how many times the retransmission or probe timer has
	// doubled (icsk_backoff): RTO is the base RTO shifted left by it.
	Backoff uint8

	// SinceDataSent, SinceDataReceived and SinceACK are the time since
	// this end last sent new data, last received data, and last received
	// an ACK (any segment acknowledging something, a probe's answer
	// included). Millisecond resolution.
	SinceDataSent, SinceDataReceived, SinceACK time.Duration

	// PeerWindow is the receive window the peer last advertised, in bytes
	// (tcpi_snd_wnd, Linux 5.4+; 0 where the kernel does not report it).
	PeerWindow uint32

	// Options are the dead-peer options in force, as Read reports them.
	// On a guarded connection (Guarded true) UserTimeout is the one the
	// guard enforces: while its data is queued the socket itself holds 0
	// (see Guard).
	Options Config

	// Guarded reports that the kit's window guard watches the connection.
	Guarded bool

	// OptionsKnown is false where the options could not be read (a census
	// of another process's sockets without the privilege to read them);
	// Options is then the kernel's defaults, and EndsIn an estimate.
	OptionsKnown bool
}

// Verdict is what a Snapshot says of the peer.
type Verdict uint8

const (
	// Alive: the peer was heard from as recently as the rules expect, and
	// nothing it owes is overdue.
	Alive Verdict = iota
	// Suspected: the kernel is retransmitting or probing into silence, or
	// data has waited for an ACK longer than the RTO. A dead peer looks
	// so until the kernel ends the connection; a live one, only briefly.
	Suspected
	// WindowStalled: the peer answers but keeps its receive window shut,
	// so written data waits. Unguarded, with a user timeout, the kernel
	// will end the connection although the peer is alive (see Guard).
	WindowStalled
	// Unwatched: idle with keepalive off. Nothing is sent, so nothing can
	// tell a vanished peer from a quiet one, and the kernel never ends it.
	Unwatched
	// Ended: the kernel has ended the connection (TCP_CLOSE).
	Ended
)

var verdictNames = [...]string{"alive", "suspected", "window-stalled", "unwatched", "ended"}

// String is the verdict's name as ghostscan prints it.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("Verdict(%d)", v)
}

// MarshalText makes a Verdict its name in JSON.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads a name MarshalText wrote.
func (v *Verdict) UnmarshalText(b []byte) error { return unmarshalName(b, verdictNames[:], v) }

// MarshalText makes a TCPState its name in JSON.
func (s TCPState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name MarshalText wrote.
func (s *TCPState) UnmarshalText(b []byte) error { return unmarshalName(b, tcpStateNames[:], s) }

// unmarshalName sets *v to the index of name b in names.
func unmarshalName[T ~uint8](b []byte, names []string, v *T) error {
	for i, n := range names {
		if n != "" && n == string(b) {
			*v = T(i)
			return nil
		}
	}
	return fmt.Errorf("ghostsock: unknown %T %q", *v, b)
}

// Busy reports data sent and not yet acknowledged. It counts bytes as well
// as segments: when the kernel ends a connection it purges the queue and
// sets the segment count to 0 (tcp_write_queue_purge), while the bytes
// (write_seq - snd_una) keep what was outstanding.
func (s Snapshot) Busy() bool { return s.UnackedSegments > 0 || s.UnackedBytes > 0 }

// Shut reports the zero-window condition: data waits, nothing is in
// flight, so the kernel probes the peer's window (tcp_probe_timer).
func (s Snapshot) Shut() bool { return !s.Busy() && s.NotSentBytes > 0 }

// Idle reports nothing queued and nothing in flight.
func (s Snapshot) Idle() bool { return !s.Busy() && s.NotSentBytes == 0 }

// Silence is the time since the peer was last heard from, data or ACK:
// what keepalive counts (tcp_keepalive_timer).
func (s Snapshot) Silence() time.Duration { return min(s.SinceACK, s.SinceDataReceived) }

// Verdict judges the peer by the snapshot's evidence alone: Ended in
// TCP_CLOSE; Suspected after at least two tries in a row without an answer
// (Tries: one may be in flight to a live peer, or lost on a lossy path);
// WindowStalled if data waits behind a shut window and the peer answers
// its probes; Unwatched if idle with keepalive off; Alive otherwise. The
// time since the peer was last heard from never counts: a connection idle
// for an hour that has just sent a request is not suspected while its
// answer is on the way.
func (s Snapshot) Verdict() Verdict {
	switch {
	case s.State == TCPClosed:
		return Ended
	case s.Tries() >= 2:
		return Suspected
	case s.Shut():
		return WindowStalled
	case s.Idle() && !s.Options.KeepAlive.Enable:
		return Unwatched
	}
	return Alive
}

// Tries is how many retransmission timeouts or probes in a row the kernel
// has sent without an answer: Retransmits while data is in flight, Probes
// otherwise. An ACK that acknowledges data resets the first, any ACK the
// second (tcp_ack).
func (s Snapshot) Tries() int {
	if s.Busy() {
		return int(s.Retransmits)
	}
	return int(s.Probes)
}

// Unanswered is a lower bound on how long the oldest data or probe still
// unanswered has waited, from the kernel's own counters, never from the
// time the peer was last heard from: with data in flight, at most the time
// since the last ACK and at least the intervals of its Retransmits
// timeouts; with keepalive probes, Probes less one times
// KeepAlive.Interval (1 s where the options are unknown); with a shut
// window, Probes less one times RTO. Zero for an idle connection nothing
// probes. ghostscan -reap ends a connection only when Tries is at least 2
// and both Unanswered and Silence reach its -silent.
func (s Snapshot) Unanswered() time.Duration {
	switch {
	case s.Busy():
		return min(s.SinceACK, s.waited())
	case s.Probes == 0:
		return 0
	case s.Shut():
		return time.Duration(s.Probes-1) * s.RTO
	}
	every := time.Second // TCP_KEEPINTVL's least (tcp_sock_set_keepintvl)
	if s.OptionsKnown && s.Options.KeepAlive.Interval > every {
		every = s.Options.KeepAlive.Interval
	}
	return time.Duration(s.Probes-1) * every
}

// EndsIn is the longest the kernel may still take to end the connection if
// the peer is silent from now on, by Bounds' rules less what the kernel's
// clocks have already run: idle, the idle bound less Silence (Never with
// keepalive off); busy, the busy bound (GuardBound if Guarded) less an
// estimate of how long the oldest unacknowledged byte has waited; a shut
// window, unguarded with a user timeout, UserTimeout plus timer slack
// whether or not the peer answers (Rule 5 in the package doc), else as
// busy. The bounds are those of the connection's own path: Options.PathRTO,
// or BaseRTO where longer. Zero for a connection ended, or whose bound has
// run out.
func (s Snapshot) EndsIn() time.Duration {
	c := s.Options
	if rto := s.BaseRTO(); rto > c.pathRTO() {
		c.PathRTO = min(rto, MaxRTOMax) // the bound on the connection's own path
	}
	idle, busy := c.Bounds()
	if s.Guarded {
		busy = c.GuardBound()
	}
	left := func(bound, elapsed time.Duration) time.Duration {
		if bound == Never {
			return Never
		}
		return max(0, bound-elapsed)
	}
	switch {
	case s.State == TCPClosed:
		return 0
	case s.Idle():
		if !c.KeepAlive.Enable {
			return Never
		}
		return left(idle, s.Silence())
	case s.Shut() && !s.Guarded && c.UserTimeout > 0:
		return c.UserTimeout + timers.Slack(c.UserTimeout)
	}
	return left(busy, s.sinceFirstLoss())
}

// BaseRTO is the connection's RTO before backoff, the path's own figure
// (about its round trip plus 200 ms): RTO itself with no backoff, else
// computed as the kernel does from RTT and RTTVar (tcp_set_rto).
func (s Snapshot) BaseRTO() time.Duration {
	return timers.BaseRTO(s.RTO, s.RTT, s.RTTVar, s.Backoff)
}

// SlowPath reports that the connection's path is slower than its Config's
// bounds allow for: its BaseRTO is past Options.PathRTO (LANRTOMax when
// zero, as for a socket the kit did not hand out). Bounds then understate
// its busy worst case (Rule 7 in the package doc); EndsIn counts with the
// connection's own RTO. An Observer is told too (EventSlowPath).
func (s Snapshot) SlowPath() bool { return s.BaseRTO() > s.Options.pathRTO() }

// waited is Unanswered with data in flight: before a timeout, the time
// since the last ACK or transmission, whichever is shorter. Every
// transmission moves SinceDataSent (tcp_event_data_sent), but Retransmits
// timeouts in a row took at least their intervals: Backoff of them doubled
// the RTO (each at least half the next, the last the RTO in force), the
// rest kept it (a retransmission the local queue dropped, retried in
// 500 ms, or a thin stream's linear timeouts), each short by a jiffy at
// most. It can be long only where a Backoff left from an earlier episode
// (no RTT sample since) meets timeouts the local queue dropped.
func (s Snapshot) waited() time.Duration {
	w := min(s.SinceACK, s.SinceDataSent)
	n := int(s.Retransmits)
	if n == 0 {
		return w
	}
	const (
		retry = 500 * time.Millisecond // TCP_RESOURCE_PROBE_INTERVAL
		jiffy = 10 * time.Millisecond  // HZ=100's; at most one lost per timer
	)
	doubled := min(int(s.Backoff), n, 62)
	var t time.Duration
	iv := s.RTO
	for range doubled {
		iv /= 2
		t += iv
	}
	last := s.RTO / 2 // the shortest the last interval can be
	if doubled < n {
		last = min(iv, retry)
	}
	t += time.Duration(n-doubled) * min(iv, retry)
	t -= time.Duration(n) * jiffy
	// A timeout whose retransmission found no route counts and doubles
	// but sends nothing, and SinceDataSent then dates from before it: the
	// two add up only when SinceDataSent is shorter than the last interval
	// can be, so that the last timeout surely sent.
	if s.SinceDataSent < last-jiffy {
		return max(w, t+s.SinceDataSent)
	}
	return max(w, t, s.SinceDataSent)
}

// sinceFirstLoss is EndsIn's estimate of how long the oldest
// unacknowledged byte has waited: the base RTO doubling Retransmits times,
// up to RTOMax, plus the time since the last transmission. It is the
// likely figure, not a bound: a timeout that found no route sends
// nothing, and then it counts some time twice (Unanswered, which must
// never overstate, does not).
func (s Snapshot) sinceFirstLoss() time.Duration {
	w := min(s.SinceACK, s.SinceDataSent)
	if s.Retransmits == 0 || s.Backoff > 30 {
		return w
	}
	rtoMax := timers.RTOCap(s.Options.RTOMax)
	iv := s.RTO >> s.Backoff
	var t time.Duration
	for range s.Retransmits {
		t += iv
		iv = min(2*iv, rtoMax)
	}
	return max(w, t+s.SinceDataSent)
}

// Inspect takes a Snapshot of conn's socket: one getsockopt(TCP_INFO), one
// ioctl(SIOCOUTQ) for the bytes not yet acknowledged, and the options as
// Read reads them. It reaches through *tls.Conn, *Conn and any
// wrapper with a NetConn() net.Conn method, and knows a guarded
// connection for what it is. A connection with no TCP socket is
// ErrNotTCP; on systems other than Linux the error wraps
// errors.ErrUnsupported.
func Inspect(conn net.Conn) (Snapshot, error) {
	r, err := reach(conn)
	if err != nil {
		return Snapshot{}, err
	}
	s, err := InspectRawConn(r.rc)
	if err != nil || r.kit == nil {
		return s, err
	}
	if g := r.kit.s.guard.Load(); g != nil {
		s.Guarded = true
		s.Options.UserTimeout = g.HeldTimeout()
	}
	kc := r.kit.Config() // bounds' inputs, not socket options
	s.Options.PathRTO, s.Options.OutageGrace = kc.PathRTO, kc.OutageGrace
	return s, nil
}

// InspectRawConn is Inspect for the TCP socket behind rc: a
// *net.TCPConn's, or an *os.File's SyscallConn.
func InspectRawConn(rc syscall.RawConn) (Snapshot, error) {
	var s Snapshot
	err := sockopt.Control(rc, func(fd uintptr) (err error) {
		if s, err = snapshotFD(fd); err != nil {
			return err
		}
		s.Options, err = get(fd)
		s.OptionsKnown = err == nil
		return err
	})
	return s, err
}

// snapshotFD reads fd's TCP_INFO, and SIOCOUTQ for the bytes written and
// not yet acknowledged.
func snapshotFD(fd uintptr) (Snapshot, error) {
	info, err := sockopt.ReadInfo(fd)
	if err != nil {
		return Snapshot{}, err
	}
	outq, err := sockopt.OutQueue(fd)
	if err != nil {
		return Snapshot{}, err
	}
	return fromInfo(info, outq), nil
}

// fromInfo fills a Snapshot's liveness fields from a TCP_INFO record and
// the bytes queued to send.
func fromInfo(i sockopt.Info, queued uint32) Snapshot {
	return Snapshot{
		State:             TCPState(i.State),
		RTT:               i.RTT,
		RTTVar:            i.RTTVar,
		RTO:               i.RTO,
		UnackedSegments:   i.Unacked,
		UnackedBytes:      i.UnackedBytes(queued),
		NotSentBytes:      i.NotSent,
		Retransmits:       i.Retransmits,
		Probes:            i.Probes,
		Backoff:           i.Backoff,
		SinceDataSent:     i.SinceDataSent,
		SinceDataReceived: i.SinceDataRecv,
		SinceACK:          i.SinceACK,
		PeerWindow:        i.PeerWindow,
	}
}
