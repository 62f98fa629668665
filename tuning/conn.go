package tuning

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/guard"
	"github.com/ghostsock/ghostsock/tuning/internal/hold"
)

// ErrNotTCP is returned by Apply and Read for a connection that has no TCP
// socket underneath (a unix socket, net.Pipe, a custom net.Conn).
var ErrNotTCP = errors.New("ghostsock: not a TCP connection")

// Conn is a TCP connection the kit handed out: its socket carries the
// Config's options, the window guard watches its writes if it is guarded,
// its writes wait while the peer is silent (the send hold, on Linux with a
// UserTimeout), and its end is reported to every Observer that saw it open.
// Listen, WrapListener and DialFunc hand out a *Conn for every TCP
// connection they make, whatever the Config. It has *net.TCPConn's methods,
// and NetConn returns the *net.TCPConn itself. Write to the Conn: bytes
// written through NetConn or File bypass the guard and the hold.
type Conn struct {
	tcp *net.TCPConn
	s   *connState
}

// GuardedConn is the name Conn had while only guarded connections had a
// type of their own.
//
// Deprecated: use Conn, the same type.
type GuardedConn = Conn

// connState is everything a Conn knows beyond its socket. It holds the
// socket's RawConn but never its *net.TCPConn or Conn, so that the
// cleanup on the *net.TCPConn, which holds the connState, runs once the
// application holds neither the Conn nor what its NetConn returned.
type connState struct {
	rc      syscall.RawConn // the socket's own
	cleanup runtime.Cleanup // stopped by Close

	mu   sync.Mutex    // serialises reconfiguration, and adding a guard or an Observer
	opts kernelOptions // the options in force, under mu

	guard atomic.Pointer[guard.Guard] // nil while unguarded; once set, never cleared
	hold  hold.Hold                   // writes wait while the peer is silent (package hold)
	ut    atomic.Int64                // opts.k.UserTimeout, for the hold without mu
	path  atomic.Int64                // opts.pathRTO, likewise
	grace atomic.Int64                // opts.grace, likewise
	slow  atomic.Bool                 // EventSlowPath told

	awaiting int  // Awaiting marks held, under mu
	timed    bool // the kept schedule's timings are on the socket, under mu
	watch         // who to tell of the end
}

func newConn(tcp *net.TCPConn, rc syscall.RawConn, o *kernelOptions) *Conn {
	s := &connState{rc: rc, opts: *o}
	s.publish(o)
	s.hold.Calm() // nothing of ours in flight yet
	s.watch.init(tcp)
	// On the *net.TCPConn, not the Conn: code that keeps only NetConn's
	// result still holds the connection.
	s.cleanup = runtime.AddCleanup(tcp, (*connState).collected, s)
	return &Conn{tcp: tcp, s: s}
}

// publish copies what the hold and the path check read without mu from
// o: the one place those mirrors of opts are written.
func (s *connState) publish(o *kernelOptions) {
	s.ut.Store(int64(o.k.UserTimeout))
	s.path.Store(int64(o.pathRTO))
	s.grace.Store(int64(o.grace))
}

// kitConn is how reach recognises a Conn, also inside a struct that
// embeds one (whose NetConn, promoted from the Conn, would skip it).
func (c *Conn) kitConn() *Conn { return c }

// Read reads into b.
func (c *Conn) Read(b []byte) (int, error) {
	c.s.inflight.Add(1)
	defer c.s.inflight.Add(-1)
	n, err := c.tcp.Read(b)
	if err != nil {
		c.s.failed(err)
	}
	return n, err
}

// Write writes b, arming the guard, if any, for the data it queues. While
// the peer is silent (data in flight for an RTO, nothing heard for as
// long, none retransmitted yet) it waits first, with the Conn's other
// writes, at most until the kernel's first RTO retransmission, the peer's
// next ACK, the write deadline, Close, or the time that RTO is due: new
// data would postpone that retransmission, and with it the user timeout
// (see "Writers that stream" in the package doc).
func (c *Conn) Write(b []byte) (n int, err error) {
	c.s.holdWrites(len(b) > 0)
	err = c.s.write(func() (werr error) { n, werr = c.tcp.Write(b); return werr })
	return n, err
}

// ReadFrom is (*net.TCPConn).ReadFrom (splice, sendfile), guarded;
// io.Copy(conn, file) reaches it too. With a send hold (Linux, a
// UserTimeout) it copies in chunks, each through the kernel's own path, and
// holds between them as Write does: a regular file in chunks of 4 MiB,
// another descriptor in chunks of 64 KiB (a socket's no larger than it
// holds), and a reader in user space through Write.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if !c.s.holds() {
		return c.readFromOnce(r)
	}
	// One level of *io.LimitedReader is what sendfile and splice look
	// through: chunk the caller's own rather than wrap it again.
	src, left := r, int64(math.MaxInt64)
	if lr, ok := r.(*io.LimitedReader); ok {
		src, left = lr.R, lr.N
		defer func() { lr.N = left }()
	}
	var size int64
	// A file sendfile can take is an *os.File, or os's wrapper of one
	// (both a syscall.Conn); fs.File and http.File have Stat too, and are
	// readers in user space.
	_, fd := src.(syscall.Conn)
	switch f, ok := src.(interface{ Stat() (os.FileInfo, error) }); {
	case ok && fd:
		// An *os.File, or os's wrapper of one that io.Copy passes when
		// the file's own WriteTo declines: sendfile takes either.
		size = readFromChunk
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fileChunk
		}
	default:
		if fd {
			size = readFromChunk // a socket splice may take
			break
		}
		n, err := io.Copy(writeOnly{c}, &io.LimitedReader{R: src, N: left})
		left -= n
		return n, err
	}
	// A source that may trickle is waited for outside the guard's bracket,
	// and no more is asked of it than it holds (sockopt.SourceWait): an idle copy
	// (a proxy's) is no write in progress.
	var wait *sockopt.SourceWait
	if size == readFromChunk {
		if rc, err := src.(syscall.Conn).SyscallConn(); err == nil {
			wait = sockopt.NewSourceWait(rc)
		}
	}
	chunk := &io.LimitedReader{R: src}
	var total int64
	for left > 0 {
		want := min(size, left)
		queues := size == fileChunk // a regular file has its bytes at hand
		if wait != nil {
			if avail := wait.Await(); avail > 0 {
				want, queues = min(want, int64(avail)), true
			}
		}
		c.s.holdWrites(queues)
		chunk.N = want
		n, err := c.readFromOnce(chunk)
		total, left = total+n, left-n
		if err != nil || n < want { // n < want: the source's end
			return total, err
		}
	}
	return total, nil
}

// writeOnly hides a Conn's ReadFrom from io.Copy.
type writeOnly struct{ c *Conn }

func (w writeOnly) Write(b []byte) (int, error) { return w.c.Write(b) }

// readFromChunk is how much ReadFrom hands the kernel between two looks at
// the peer's silence. A regular file cannot trickle, so it goes in chunks
// of fileChunk, the most one sendfile call of Go's sends; a pipe that
// trickles hides one chunk's writes from the hold while it fills it.
const (
	readFromChunk = 64 << 10
	fileChunk     = 4 << 20
)

func (c *Conn) readFromOnce(r io.Reader) (n int64, err error) {
	err = c.s.write(func() error { n, err = c.tcp.ReadFrom(r); return err })
	return n, err
}

// WriteTo is (*net.TCPConn).WriteTo: reading needs no guard.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	c.s.inflight.Add(1)
	defer c.s.inflight.Add(-1)
	n, err := c.tcp.WriteTo(w)
	if err != nil {
		c.s.failed(err)
	}
	return n, err
}

// CloseWrite shuts the sending side down. The FIN waits behind queued data
// as any write does, so it arms the guard too.
func (c *Conn) CloseWrite() error { return c.s.write(c.tcp.CloseWrite) }

// CloseRead shuts the reading side down.
func (c *Conn) CloseRead() error { return c.tcp.CloseRead() }

// Close stops the guard, reports the end to the Observers, and closes the
// connection.
func (c *Conn) Close() error {
	c.s.hold.Shut()
	c.s.cleanup.Stop()
	c.s.closed()
	return c.tcp.Close()
}

// LocalAddr is the local address.
func (c *Conn) LocalAddr() net.Addr { return c.tcp.LocalAddr() }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.tcp.RemoteAddr() }

// SetDeadline is (*net.TCPConn).SetDeadline.
func (c *Conn) SetDeadline(t time.Time) error {
	c.s.hold.SetDeadline(t)
	return c.tcp.SetDeadline(t)
}

// SetReadDeadline is (*net.TCPConn).SetReadDeadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.tcp.SetReadDeadline(t) }

// SetWriteDeadline is (*net.TCPConn).SetWriteDeadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.s.hold.SetDeadline(t)
	return c.tcp.SetWriteDeadline(t)
}

// SetNoDelay is (*net.TCPConn).SetNoDelay.
func (c *Conn) SetNoDelay(noDelay bool) error { return c.tcp.SetNoDelay(noDelay) }

// SetLinger is (*net.TCPConn).SetLinger.
func (c *Conn) SetLinger(sec int) error { return c.tcp.SetLinger(sec) }

// SetReadBuffer is (*net.TCPConn).SetReadBuffer.
func (c *Conn) SetReadBuffer(bytes int) error { return c.tcp.SetReadBuffer(bytes) }

// SetWriteBuffer is (*net.TCPConn).SetWriteBuffer.
func (c *Conn) SetWriteBuffer(bytes int) error { return c.tcp.SetWriteBuffer(bytes) }

// SetKeepAlive is (*net.TCPConn).SetKeepAlive. It changes the socket
// beneath the Config: Bounds no longer describes the connection. To
// change a connection's settings, Apply a Config.
func (c *Conn) SetKeepAlive(keepalive bool) error { return c.tcp.SetKeepAlive(keepalive) }

// SetKeepAlivePeriod is (*net.TCPConn).SetKeepAlivePeriod; see SetKeepAlive.
func (c *Conn) SetKeepAlivePeriod(d time.Duration) error { return c.tcp.SetKeepAlivePeriod(d) }

// SetKeepAliveConfig is (*net.TCPConn).SetKeepAliveConfig; see SetKeepAlive.
func (c *Conn) SetKeepAliveConfig(config net.KeepAliveConfig) error {
	return c.tcp.SetKeepAliveConfig(config)
}

// MultipathTCP is (*net.TCPConn).MultipathTCP.
func (c *Conn) MultipathTCP() (bool, error) { return c.tcp.MultipathTCP() }

// File is (*net.TCPConn).File: a duplicate of the socket's descriptor.
// Writes through it bypass the guard.
func (c *Conn) File() (*os.File, error) { return c.tcp.File() }

// SyscallConn is the socket's raw connection. On a guarded Conn, or one
// with a send hold, its Write arms the guard and holds as Write does, and
// it hides the poll descriptor, so that *os.File's WriteTo sends through
// ReadFrom, guarded and held, and not past them.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if c.s.guard.Load() != nil || c.s.holds() {
		return guardedRawConn{c.s.rc, c.s}, nil
	}
	return c.s.rc, nil
}

// NetConn returns the *net.TCPConn beneath, as *tls.Conn's NetConn does.
func (c *Conn) NetConn() net.Conn { return c.tcp }

// Awaiting marks the connection as awaiting its peer (a response, a
// stream's next message) until release is called. A connection whose
// Config is Lean with a schedule kept (Config.LeanAwaits) then probes with
// that schedule while any mark is held, so that a peer that vanishes during
// the wait is found within Config.AwaitBound; the last release turns
// keepalive off again (Rule 8 in the package doc). Each switch is a
// setsockopt. On any other connection it does nothing. Apply keeps the
// marks. Calls of release after the first do nothing. On an error (the
// socket's) the mark is not taken.
func (c *Conn) Awaiting() (release func(), err error) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opts.learns {
		return func() {}, nil
	}
	if s.awaiting == 0 {
		if err := s.switchKeepAlive(true); err != nil {
			return func() {}, fmt.Errorf("ghostsock: Awaiting: %w", err)
		}
	}
	s.awaiting++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.awaiting--; s.awaiting == 0 && s.opts.learns {
				s.switchKeepAlive(false) // a closed socket has no keepalive to end
			}
		})
	}, nil
}

// switchKeepAlive turns a Lean connection's kept schedule on or off, with
// s.mu held.
func (s *connState) switchKeepAlive(on bool) error {
	o := s.opts
	return sockopt.Control(s.rc, func(fd uintptr) error {
		if on && !s.timed {
			if err := o.k.SetKeepAliveTimings(fd); err != nil {
				return err
			}
			s.timed = true
		}
		return sockopt.SetKeepAlive(fd, on)
	})
}

// HeldWrites reports how many times the send hold has held the Conn's
// writes (Write, ReadFrom's chunks, raw writes through SyscallConn) because
// the peer fell silent with data in flight; writes that waited behind
// another goroutine's hold are not counted again. On a live path, where
// ACKs come within an RTO, it stays 0.
func (c *Conn) HeldWrites() int64 { return c.s.hold.Held() }

// Guarded reports whether the window guard watches the connection.
func (c *Conn) Guarded() bool { return c.s.guard.Load() != nil }

// Config is the Config whose options the connection carries: the last one
// applied to it, by an entry point or by Apply.
func (c *Conn) Config() Config {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.opts.config
}

// write runs w, which writes to the socket, as every write of a Conn
// runs: counted in flight for the Observers, inside the guard's bracket if
// the Conn is guarded, its error shown to the Observers and joined to the
// guard's own failure, if any.
func (s *connState) write(w func() error) error {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	g := s.guard.Load()
	if g != nil {
		g.Begin(s.rc)
	}
	err := w()
	if g != nil {
		g.End()
	}
	if err == nil {
		return nil
	}
	s.failed(err)
	return g.Annotate(err)
}

// holdWrites is the send hold (package hold), on a connection with a user
// timeout to start, where TCP_INFO tells when to hold (Linux). Where the
// write that follows queues its data at once (queues), a sample that finds
// nothing queued or in flight moves the guard's next tick (Guard.CalmAt):
// a write that may wait first (for its source, or writing nothing) would
// queue data older, to the guard, than it is.
func (s *connState) holdWrites(queues bool) {
	if !s.holds() {
		return
	}
	rto, empty := s.hold.Wait(s.rc, time.Duration(s.ut.Load()), time.Duration(s.grace.Load()))
	if rto > 0 {
		s.checkPath(rto)
	}
	if g := s.guard.Load(); g != nil && empty != 0 && queues {
		g.CalmAt(hold.MonoTime(empty))
	}
}

// holds reports whether the connection's writes go through the send hold.
func (s *connState) holds() bool { return guardSupported && s.ut.Load() > 0 }

// closed is Close's bookkeeping: the end reported, the guard stopped.
func (s *connState) closed() {
	s.reportClose(false)
	if g := s.guard.Load(); g != nil {
		g.Close()
	}
}

// collected is the cleanup of a connection dropped without Close: the end
// is reported, as at Close, and the guard stopped; the runtime closes the
// socket, as it does any net.Conn's, once the connState goes too.
func (s *connState) collected() {
	s.reportClose(true)
	if g := s.guard.Load(); g != nil {
		g.Close()
	}
}

// guardMode says whether an entry point guards.
type guardMode uint8

const (
	guardDefault guardMode = iota // where the guard applies: Listen, WrapListener, DialFunc
	guardAlways                   // whatever NoGuard says: Guard, GuardListener, GuardDialContext
	guardNever                    // WrapDialContext
)

// guards reports whether an entry point in mode guards with o.
func (o *kernelOptions) guards(mode guardMode) bool {
	switch mode {
	case guardAlways:
		return true
	case guardDefault:
		return o.guardByDefault()
	}
	return false
}

// guardByDefault reports whether the entry points that guard by default
// guard with o: where the guard applies and NoGuard is not set.
func (o *kernelOptions) guardByDefault() bool {
	return !o.noGuard && o.k.UserTimeout != 0 && guardSupported
}

// handle is the one place a connection is hardened, guarded and observed
// (see "One path for every connection" in the package doc). Beneath conn it
// finds a *Conn, which adopts this layer; the *net.TCPConn itself, handed
// out as a new *Conn; or a socket under someone else's wrapper, set and
// handed out as it is (net/http looks for *tls.Conn), or refused where this
// layer guards: the guard cannot sit beneath a wrapper that writes. side is
// the end this process is, or 0 for an entry point that does not observe;
// preset says that the socket carries o's options already (set before
// connect(2), or inherited from the listening socket). It returns the
// connection to hand out; on an error the caller closes conn.
func (o *kernelOptions) handle(conn net.Conn, side Side, mode guardMode, preset bool) (net.Conn, error) {
	r, err := reach(conn)
	switch {
	case errors.Is(err, ErrNotTCP):
		return conn, nil // not TCP: nothing to harden
	case err != nil:
		return nil, err
	case r.kit != nil:
		return conn, r.kit.s.adopt(r.kit.tcp, o, side, mode)
	case r.tcp == nil || r.tcp != conn:
		// A wrapper of someone else's holds the socket.
		if o.guards(mode) {
			return nil, &WrapperError{Type: fmt.Sprintf("%T", r.holder), Guard: true}
		}
		if !preset {
			if err := sockopt.Control(r.rc, o.setFD); err != nil {
				return nil, err
			}
		}
		return conn, nil
	}
	if !preset {
		if err := sockopt.Control(r.rc, o.setFD); err != nil {
			return nil, err
		}
	}
	c := newConn(r.tcp, r.rc, o)
	if err := c.s.attach(c.tcp, o, side, mode); err != nil {
		c.s.cleanup.Stop()
		c.s.closed()
		return nil, err
	}
	return c, nil
}

// adopt makes o's layer part of the connection: o's options and guard
// timings, a guard if this layer guards and none is there yet, and o's
// Observer told of the connection if it has not been.
func (s *connState) adopt(tcp *net.TCPConn, o *kernelOptions, side Side, mode guardMode) error {
	if err := s.reconfigure(o); err != nil {
		return err
	}
	return s.attach(tcp, o, side, mode)
}

// attach adds what o's layer adds beyond options: its guard, if it guards
// and none is there, and its Observer. A Conn made for o needs only this.
func (s *connState) attach(tcp *net.TCPConn, o *kernelOptions, side Side, mode guardMode) error {
	if o.guards(mode) && s.guard.Load() == nil {
		if err := s.addGuard(tcp); err != nil {
			return err
		}
	}
	if o.observer != nil && side != 0 {
		s.watch.add(o.observer, side, s)
	}
	return nil
}

// reconfigure moves the connection to o's options, through its guard if
// it has one (which keeps the user timeout it holds while armed, and takes
// o's timings). Equal options cost nothing.
func (s *connState) reconfigure(o *kernelOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.sameOptions(o) {
		s.opts.config, s.opts.pathRTO, s.opts.grace = o.config, o.pathRTO, o.grace
		s.publish(o)
		return nil
	}
	if g := s.guard.Load(); g != nil {
		if err := g.Reconfigure(s.rc, o.guardSettings()); err != nil {
			return err
		}
	} else {
		if err := sockopt.Control(s.rc, o.setFD); err != nil {
			return err
		}
		if s.opts.k.RTOMax != 0 && o.k.RTOMax == 0 {
			// Options.Set leaves a zero RTOMax alone: put the kernel's back.
			if err := sockopt.SetRTOMax(s.rc, MaxRTOMax); err != nil && !errors.Is(err, sockopt.ErrNoProtoOpt) {
				return err
			}
		}
	}
	cfg := o.config
	s.opts = *o
	s.publish(o)
	s.hold.Calm() // the hold may start now: a flight's age counts from here
	s.opts.config = cfg
	if s.timed = false; s.awaiting > 0 && o.learns {
		// Options.Set turned keepalive off: the wait goes on probing.
		return s.switchKeepAlive(true)
	}
	return nil
}

// addGuard places the guard on the connection, with the options in force.
func (s *connState) addGuard(tcp *net.TCPConn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.guard.Load() != nil {
		return nil
	}
	g, err := guard.New(tcp, s.rc, s.opts.guardSettings())
	if err != nil {
		return err
	}
	s.guard.Store(g)
	return nil
}

// reached is what reach found beneath a connection.
type reached struct {
	kit    *Conn           // a connection the kit handles, at any depth
	tcp    *net.TCPConn    // the socket's own conn, if reached as one
	rc     syscall.RawConn // the socket
	holder net.Conn        // the outermost conn that is neither of the above
}

// reach walks conn's unwrap chain to its TCP socket. A connection with no
// TCP socket is ErrNotTCP; a TCP one whose socket a wrapper hides is a
// *WrapperError.
func reach(conn net.Conn) (reached, error) {
	var r reached
	for cur := conn; ; {
		if cur == nil {
			return r, fmt.Errorf("%w: nil", ErrNotTCP)
		}
		if v := reflect.ValueOf(cur); v.Kind() == reflect.Pointer && v.IsNil() {
			return r, fmt.Errorf("%w: nil %T", ErrNotTCP, cur)
		}
		switch c := cur.(type) {
		case interface{ kitConn() *Conn }: // a *Conn, or a struct embedding one
			k := c.kitConn()
			r.kit, r.tcp, r.rc = k, k.tcp, k.s.rc
			if cur != net.Conn(k) && r.holder == nil {
				r.holder = cur
			}
			return r, nil
		case *net.TCPConn:
			rc, err := c.SyscallConn()
			if err != nil {
				return r, fmt.Errorf("ghostsock: %w", err)
			}
			r.tcp, r.rc = c, rc
			return r, nil
		}
		if r.holder == nil {
			r.holder = cur
		}
		if w, ok := cur.(interface{ NetConn() net.Conn }); ok { // *tls.Conn and friends
			cur = w.NetConn()
			continue
		}
		if _, ok := cur.LocalAddr().(*net.TCPAddr); !ok {
			return r, fmt.Errorf("%w: %T", ErrNotTCP, cur)
		}
		if sc, ok := cur.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			if err != nil {
				return r, fmt.Errorf("ghostsock: %T: %w", cur, err)
			}
			r.rc = rc
			return r, nil
		}
		return r, &WrapperError{Type: fmt.Sprintf("%T", cur)}
	}
}

// ErrWrapped is wrapped by every WrapperError.
var ErrWrapped = errors.New("ghostsock: TCP socket behind a wrapper")

// WrapperError says that a wrapper the kit did not make stands between an
// entry point and a TCP socket: it hides the socket (no NetConn or
// SyscallConn method, as netutil.LimitListener's conns), or it writes to
// the socket itself, so that the window guard cannot sit beneath it (as
// *tls.Conn). The fix is the same: put the kit beneath the wrapper, which
// then wraps the kit's *Conn. It wraps ErrWrapped. From a listener's
// Accept it comes inside a temporary *AcceptError.
type WrapperError struct {
	Type  string // the wrapper's type, as %T prints it
	Guard bool   // the socket was reached, but the guard cannot be placed beneath the wrapper
}

func (e *WrapperError) Error() string {
	if e.Guard {
		return fmt.Sprintf("ghostsock: cannot guard beneath %s, which writes to the TCP socket itself: "+
			"put the kit beneath it (wrap what it wraps: tls.NewListener(c.Listen(...)), or let http.Server.ServeTLS do TLS), "+
			"or set Config.NoGuard to take the options without the guard", e.Type)
	}
	return fmt.Sprintf("ghostsock: %s hides its TCP socket (it has no NetConn or SyscallConn method): "+
		"put the kit beneath it, so that it wraps the kit's connection (for a listener: wrap c.Listen(...), not the other way round)", e.Type)
}

func (e *WrapperError) Unwrap() error { return ErrWrapped }

// AcceptError is returned by a listener's Accept when the connection it
// accepted could not be handed out: the options could not be set, or a
// wrapper stands in the way (WrapperError). That connection has been
// closed. It is temporary: http.Server and grpc.Server back off and go on
// serving.
type AcceptError struct {
	Err error
}

func (e *AcceptError) Error() string   { return "ghostsock: accepted conn closed: " + e.Err.Error() }
func (e *AcceptError) Unwrap() error   { return e.Err }
func (e *AcceptError) Timeout() bool   { return false }
func (e *AcceptError) Temporary() bool { return true }

// listener hands every connection it accepts to handle.
type listener struct {
	net.Listener
	opts   *kernelOptions
	err    error // the Config's: returned by every Accept
	mode   guardMode
	preset bool // the kernel copied the options from the listening socket
}

// Accept accepts a connection and hands it out as the kit's. A failure on
// that one connection closes it and is a temporary *AcceptError.
func (l *listener) Accept() (net.Conn, error) {
	if l.err != nil {
		return nil, l.err
	}
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	h, err := l.opts.handle(conn, SideAccepted, l.mode, l.preset)
	if err != nil {
		conn.Close()
		return nil, &AcceptError{Err: err}
	}
	return h, nil
}

// File is the listening socket's File, as (*net.TCPListener).File; an
// error wrapping errors.ErrUnsupported if the listener beneath has none.
func (l *listener) File() (*os.File, error) {
	if f, ok := l.Listener.(interface{ File() (*os.File, error) }); ok {
		return f.File()
	}
	return nil, fmt.Errorf("ghostsock: %T has no File method: %w", l.Listener, errors.ErrUnsupported)
}

// SetDeadline is the listening socket's SetDeadline, as
// (*net.TCPListener).SetDeadline; an error wrapping errors.ErrUnsupported
// if the listener beneath has none.
func (l *listener) SetDeadline(t time.Time) error {
	if d, ok := l.Listener.(interface{ SetDeadline(time.Time) error }); ok {
		return d.SetDeadline(t)
	}
	return fmt.Errorf("ghostsock: %T has no SetDeadline method: %w", l.Listener, errors.ErrUnsupported)
}

// SyscallConn is the listening socket's raw connection, as
// (*net.TCPListener).SyscallConn.
func (l *listener) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := l.Listener.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, fmt.Errorf("ghostsock: %T has no SyscallConn method: %w", l.Listener, errors.ErrUnsupported)
}

// guardedRawConn is the RawConn SyscallConn hands out on a guarded Conn or
// one with a send hold. It hides the poll descriptor of the net package's
// own RawConn on purpose: *os.File's WriteTo would otherwise sendfile
// straight to the socket, past the guard and the hold.
type guardedRawConn struct {
	rc syscall.RawConn
	s  *connState // its guard is looked up at each write: a layer may add one later
}

func (r guardedRawConn) Control(f func(fd uintptr)) error { return r.rc.Control(f) }

func (r guardedRawConn) Read(f func(fd uintptr) (done bool)) error { return r.rc.Read(f) }

func (r guardedRawConn) Write(f func(fd uintptr) (done bool)) error {
	r.s.holdWrites(false) // f may write nothing, or wait
	return r.s.write(func() error { return r.rc.Write(f) })
}
