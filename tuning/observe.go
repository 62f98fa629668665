package tuning

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Observer receives an Event for each connection the kit opens and for
// the end of each. Set one in Config.Observer to count what the kit does;
// package tuning/ghostmetrics turns Events into OpenTelemetry metrics.
//
// Observe is called on the goroutine that dialed or accepted, or that saw
// the error ending the connection, or that closed it: it must be quick and
// safe for concurrent use. Implement Observer with a pointer type (or use
// NewObserver), so that a Config holding one can still be compared.
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
)

var eventKindNames = [...]string{"", "opened", "ended"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "EventKind(?)"
}

// Side says which end of a connection this process is.
type Side uint8

const (
	SideDialed Side = 1 + iota
	SideAccepted
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
}

// watch is what an observed connection carries: who to tell, and whether
// the end has been told.
type watch struct {
	obs   Observer
	side  Side
	rc    syscall.RawConn
	g     *guard // nil unguarded
	local net.Addr
	peer  net.Addr
	ended atomic.Bool
}

func newWatch(o Observer, side Side, conn net.Conn, rc syscall.RawConn, g *guard) *watch {
	w := &watch{obs: o, side: side, rc: rc, g: g, local: conn.LocalAddr(), peer: conn.RemoteAddr()}
	o.Observe(w.event(EventOpened))
	return w
}

func (w *watch) event(k EventKind) Event {
	return Event{Kind: k, Side: w.side, Local: w.local, Remote: w.peer, Guarded: w.g != nil, SinceACK: -1}
}

// failed looks at an error from Read or Write. The connection has ended if
// the kernel holds its socket closed; a deadline, EOF (the peer may only
// have half-closed), or an error from another file (WriteTo's writer) is
// left for Close to report.
func (w *watch) failed(err error) {
	if w.ended.Load() || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	var s Snapshot
	if rerr := rawControl(w.rc, func(fd uintptr) (err error) {
		s, err = snapshotFD(fd)
		return err
	}); rerr != nil || s.State != TCPClosed {
		return
	}
	w.end(err, s)
}

// closed reports the end at Close, if none was reported before. If the
// kernel had ended the connection and nobody read the error since, the
// socket still holds it (SO_ERROR), and the end is that error's.
func (w *watch) closed() {
	if w.ended.Load() {
		return
	}
	var s Snapshot
	var soErr error
	rerr := rawControl(w.rc, func(fd uintptr) (err error) {
		if s, err = snapshotFD(fd); err != nil || s.State != TCPClosed {
			return err
		}
		soErr, err = socketError(fd)
		return err
	})
	if rerr != nil || soErr == nil {
		if w.ended.CompareAndSwap(false, true) {
			e := w.event(EventEnded)
			e.Cause = CauseClosed
			w.obs.Observe(e)
		}
		return
	}
	w.end(soErr, s)
}

// end reports the end by err, with the kernel's state s at the error.
func (w *watch) end(err error, s Snapshot) {
	if !w.ended.CompareAndSwap(false, true) {
		return
	}
	e := w.event(EventEnded)
	e.Err = err
	e.SinceACK = s.SinceACK
	cut := cutNone
	if w.g != nil {
		s.Guarded = true
		cut = w.g.lastCut()
	}
	e.Kernel = s
	e.Cause = refine(Classify(err), s, cut)
	w.obs.Observe(e)
}

// observedConn is an unguarded *net.TCPConn that an Observer watches. It
// keeps every method of *net.TCPConn that the standard library and grpc-go
// look for (ReadFrom and WriteTo for splice and sendfile, CloseRead,
// CloseWrite, SyscallConn), and NetConn returns the *net.TCPConn.
type observedConn struct {
	*net.TCPConn
	w *watch
}

func (c *observedConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	if err != nil {
		c.w.failed(err)
	}
	return n, err
}

func (c *observedConn) Write(b []byte) (int, error) {
	n, err := c.TCPConn.Write(b)
	if err != nil {
		c.w.failed(err)
	}
	return n, err
}

func (c *observedConn) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.TCPConn.ReadFrom(r)
	if err != nil {
		c.w.failed(err)
	}
	return n, err
}

func (c *observedConn) WriteTo(w io.Writer) (int64, error) {
	n, err := c.TCPConn.WriteTo(w)
	if err != nil {
		c.w.failed(err)
	}
	return n, err
}

func (c *observedConn) Close() error {
	c.w.closed()
	return c.TCPConn.Close()
}

// NetConn returns the *net.TCPConn beneath.
func (c *observedConn) NetConn() net.Conn { return c.TCPConn }

// observe returns conn watched by o, or conn itself if o is nil or conn
// has no TCP socket. A *GuardedConn is watched in place.
func observe(o Observer, side Side, conn net.Conn) net.Conn {
	if o == nil {
		return conn
	}
	switch c := conn.(type) {
	case *GuardedConn:
		c.w = newWatch(o, side, c, c.rc, c.g)
		return c
	case *net.TCPConn:
		rc, err := c.SyscallConn()
		if err != nil {
			return conn
		}
		return &observedConn{TCPConn: c, w: newWatch(o, side, c, rc, nil)}
	}
	return conn
}
