package tuning

import (
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/guard"
)

// Observer receives an Event for each connection the kit opens and for
// the end of each. Set one in Config.Observer to count what the kit does;
// package tuning/ghostmetrics turns Events into OpenTelemetry metrics.
//
// Observe is called on the goroutine that dialed or accepted, or that saw
// the error ending the connection, or that closed it, or (EventSlowPath)
// inside a Write that found the path slow: it must be quick, safe for
// concurrent use, and must not call back into the connection. Implement
// Observer with a pointer type (or use NewObserver), so that a Config
// holding one can still be compared.
type Observer interface {
	Observe(Event)
}

// NewObserver returns an Observer that calls f with every Event: the plain
// Go hook, for callers without OpenTelemetry.
func NewObserver(f func(Event)) Observer { return &funcObserver{f} }

type funcObserver struct{ f func(Event) }

func (o *funcObserver) Observe(e Event) { o.f(e) }

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventOpened: a connection was dialed or accepted with the Config's
	// options set, and handed to the application.
	EventOpened EventKind = 1 + iota
	// EventEnded: a connection ended, once per connection: at the first
	// Read or Write error after which the kernel holds the connection
	// closed (a reap, a reset), or else at Close.
	EventEnded
	// EventSlowPath: the connection's retransmission timeout (Event.RTO)
	// is longer than the PathRTO its Config's bounds allow for, so Bounds
	// no longer hold for it (Rule 7 in the package doc). At most once per
	// connection, between its EventOpened and EventEnded, when the send
	// hold's TCP_INFO sample before a write shows it (Linux, with a
	// UserTimeout): a connection that never writes is never reported.
	EventSlowPath
)

var eventKindNames = [...]string{"", "opened", "ended", "slow path"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "EventKind(?)"
}

// Side says which end of a connection this process is.
type Side uint8

const (
	SideDialed   Side = 1 + iota // this process dialed the connection
	SideAccepted                 // this process accepted it
)

var sideNames = [...]string{"", "dialed", "accepted"}

func (s Side) String() string {
	if int(s) < len(sideNames) {
		return sideNames[s]
	}
	return "Side(?)"
}

// Event is one thing an Observer is told.
type Event struct {
	Kind          EventKind
	Side          Side
	Local, Remote net.Addr
	Guarded       bool // the window guard watches the connection

	// Cause (EventEnded) is why it ended: Classify's answer for Err,
	// refined with the kernel's state at the error (CauseReapedIdle,
	// CauseReapedBusy and CauseWindowStall, never CauseSilentPeer), or
	// CauseClosed for a Close with no error before it.
	Cause Cause
	// Err (EventEnded) is the error that ended the connection, nil for a
	// Close.
	Err error
	// SinceACK (EventEnded with an Err) is how long before the error the
	// peer's last ACK arrived, as the kernel counted it (millisecond
	// resolution): for a reap, how long the peer had been silent. -1 where
	// unknown (a Close, or a socket that could not be read).
	SinceACK time.Duration
	// Kernel (EventEnded with an Err) is the socket as the kernel held it
	// at the error, which Cause was judged on; zero otherwise.
	Kernel Snapshot
	// RTO (EventSlowPath) is the connection's retransmission timeout as
	// the kernel held it (tcpi_rto).
	RTO time.Duration
	// Dropped (EventEnded) says that the application dropped the
	// connection without Close: the end was found when the garbage
	// collector reclaimed it, and the kit closed the socket then.
	Dropped bool
}

// watch is what a Conn carries for its Observers: who they are, and
// whether the end has been told. It is a part of the Conn's connState.
type watch struct {
	observed atomic.Bool // some Observer watches: the fast check on every error
	ended    atomic.Bool
	// inflight counts the Reads and Writes in their system call or in
	// reporting its error: Close waits for them to report the kernel's
	// verdict that one of them took (see reportClose).
	inflight atomic.Int32

	wmu  sync.Mutex // guards obs and side
	obs  []Observer
	side Side

	local, peer net.Addr
}

func (w *watch) init(conn net.Conn) { w.local, w.peer = conn.LocalAddr(), conn.RemoteAddr() }

// add makes o one of the connection's Observers and tells it the
// connection opened, unless o watches it already (a second layer with the
// same Observer) or the connection has ended.
func (w *watch) add(o Observer, side Side, s *connState) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.ended.Load() {
		return
	}
	for _, have := range w.obs {
		if sameObserver(have, o) {
			return
		}
	}
	if w.side == 0 {
		w.side = side
	}
	w.obs = append(w.obs, o)
	w.observed.Store(true)
	o.Observe(s.event(EventOpened))
}

// checkPath tells the Observers, once, that the connection's RTO has grown
// past the PathRTO its Config's bounds allow for (EventSlowPath).
func (s *connState) checkPath(rto time.Duration) {
	if rto <= time.Duration(s.path.Load()) || !s.observed.Load() || s.slow.Load() {
		return
	}
	// Under wmu, as the end is decided there: never after EventEnded.
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.ended.Load() || !s.slow.CompareAndSwap(false, true) {
		return
	}
	e := s.event(EventSlowPath)
	e.RTO = rto
	for _, o := range s.obs {
		o.Observe(e)
	}
}

// sameObserver compares two Observers without panicking on a dynamic type
// that cannot be compared (Observer's doc asks for pointer types).
func sameObserver(a, b Observer) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

func (s *connState) event(k EventKind) Event {
	return Event{Kind: k, Side: s.side, Local: s.local, Remote: s.peer, Guarded: s.guard.Load() != nil, SinceACK: -1}
}

// failed looks at an error from Read or Write. The connection has ended if
// the kernel holds its socket closed; a deadline, EOF (the peer may only
// have half-closed), or an error from another file (WriteTo's writer) is
// left for Close to report.
func (s *connState) failed(err error) {
	if !s.observed.Load() || s.ended.Load() || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	var snap Snapshot
	if rerr := sockopt.Control(s.rc, func(fd uintptr) (err error) {
		snap, err = snapshotFD(fd)
		return err
	}); rerr != nil || snap.State != TCPClosed {
		return
	}
	// EPIPE (a Write) and ENOTCONN (a CloseWrite) are no verdict: the
	// kernel had ended the connection and another call of this Conn took
	// its error (a reader and a writer each in their call when the user
	// timeout fires); let that one report it.
	if (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOTCONN)) && s.awaitVerdict(1) {
		return
	}
	s.end(err, snap, false)
}

// awaitVerdict waits, closeWait at most, while more than self Reads and
// Writes of this Conn are in flight and none has reported the end, and
// says whether one did. On a socket the kernel has closed every system
// call returns at once; a ReadFrom or WriteTo may still be in the other
// file's call, which the wait's bound covers.
func (s *connState) awaitVerdict(self int32) bool {
	for deadline := time.Now().Add(closeWait); !s.ended.Load() && s.inflight.Load() > self && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
	}
	return s.ended.Load()
}

// closeWait is how long Close waits for a Read or Write in flight to
// report the kernel's verdict on a connection the kernel has closed.
const closeWait = 100 * time.Millisecond

// reportClose reports the end at Close, or at the collection of a Conn
// dropped without it, if none was reported before. If the kernel had ended
// the connection and nobody read the error since, the socket still holds
// it (SO_ERROR), and the end is that error's; if a Read or Write of this
// Conn took the error and has not reported it yet, Close waits for it to
// (closeWait at most), so that the end is the kernel's verdict and not a
// Close.
func (s *connState) reportClose(dropped bool) {
	if !s.observed.Load() || s.ended.Load() {
		return
	}
	var snap Snapshot
	var soErr error
	rerr := sockopt.Control(s.rc, func(fd uintptr) (err error) {
		if snap, err = snapshotFD(fd); err != nil || snap.State != TCPClosed {
			return err
		}
		soErr, err = sockopt.SocketError(fd)
		return err
	})
	if rerr == nil && soErr == nil && snap.State == TCPClosed {
		// The kernel ended the connection and its error went to a Read
		// or Write of this Conn that has not reported it yet: a client
		// whose reader closes the connection at EOF (pgx does) can get
		// here first, the writer's ETIMEDOUT still on its way. On a
		// closed socket every call returns at once; wait for it.
		if s.awaitVerdict(0) {
			return
		}
	}
	if rerr != nil || soErr == nil {
		s.tell(func() Event {
			e := s.event(EventEnded)
			e.Cause = CauseClosed
			e.Dropped = dropped
			return e
		})
		return
	}
	s.end(soErr, snap, dropped)
}

// end reports the end by err, with the kernel's state snap at the error.
func (s *connState) end(err error, snap Snapshot, dropped bool) {
	s.tell(func() Event {
		e := s.event(EventEnded)
		e.Err = err
		e.SinceACK = snap.SinceACK
		e.Dropped = dropped
		cut := guard.CutNone
		if g := s.guard.Load(); g != nil {
			snap.Guarded = true
			cut = g.LastCut()
		}
		e.Kernel = snap
		e.Cause = refine(Classify(err), snap, cut)
		return e
	})
}

// tell sends the end, made by mk, to every Observer, once.
func (s *connState) tell(mk func() Event) {
	s.wmu.Lock()
	if !s.ended.CompareAndSwap(false, true) {
		s.wmu.Unlock()
		return
	}
	obs := s.obs
	s.wmu.Unlock()
	e := mk()
	for _, o := range obs {
		o.Observe(e)
	}
}
