package tuning

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The window guard.
//
// With TCP_USER_TIMEOUT set, Linux (5.11 and later, tcp_probe_timer) ends a
// connection whose peer's receive window has stayed shut for the user
// timeout, although the peer answers every zero-window probe: a live
// reader that pauses longer than the budget loses its connection. No
// socket option tells the two cases apart. The guard does, from user
// space, and only while there is something to guard: a write arms a timer
// on the connection; each tick reads TCP_INFO, and while the window is
// shut and the peer still acknowledges probes it raises the user timeout
// so that the kernel's deadline stays ahead; once the window opens, or the
// send queue empties, it puts the configured value back, and with nothing
// queued it disarms until the next write. An idle connection costs
// nothing; a busy one one getsockopt per tick.
//
// The kernel measures a shut window from icsk_probes_tstamp, the first
// zero-window probe, which user space cannot read. It is always after the
// last data segment sent (any data sent resets it), so the guard counts
// from tcpi_last_data_sent, or from the last time it saw the window open,
// whichever is later: the user timeout it sets ends no earlier than
// extend after the tick, and about one RTO later at most.

// guardParams are the guard's timings, all derived from the user timeout B
// it protects: it ticks every B/4, keeps the kernel's deadline at least
// B/2 ahead, and believes the peer alive while its last ACK is younger
// than 5B/4 plus two RTOs (probes back off, and the kernel clamps them to
// the deadline, so a live peer's ACKs can be up to extend + period + an
// RTO apart, seen up to a period late).
type guardParams struct {
	base   time.Duration // the Config's UserTimeout, restored when the window opens
	period time.Duration // time between ticks while armed
	extend time.Duration // how far past a tick the kernel's deadline is kept
	alive  time.Duration // how recent the last ACK must be, plus 2 RTOs
}

// MinGuardTimeout is the smallest UserTimeout Guard accepts: below it the
// guard would tick more often than a zero-window probe can come back.
const MinGuardTimeout = time.Second

func newGuardParams(ut time.Duration) guardParams {
	return guardParams{base: ut, period: ut / 4, extend: ut / 2, alive: ut * 5 / 4}
}

// GuardBound is the worst case, with the guard, from a peer that vanishes
// while its receive window is shut to the writer's ETIMEDOUT: twice
// UserTimeout, plus three RTOs, taken as TCP_RTO_MIN (200 ms), the
// figure on a LAN. (Without the guard such a connection ends UserTimeout
// after the window shut, dead peer or live one.) The guard believes the
// peer alive for 5/4 UserTimeout after its last ACK, then lets the kernel
// deadline it keeps at least UserTimeout/2 ahead run out.
func (c Config) GuardBound() time.Duration {
	p := newGuardParams(c.UserTimeout)
	return p.alive + p.extend + p.period + 3*rtoMin
}

// windowSample is what a tick reads from TCP_INFO.
type windowSample struct {
	closed    bool   // TCP_CLOSE: the kernel has ended the connection
	unacked   uint32 // segments sent and not acknowledged (packets_out)
	notsent   uint32 // bytes queued and not yet sent
	sinceSend time.Duration
	sinceAck  time.Duration
	rto       time.Duration
}

// shut reports the kernel's zero-window probing condition: data queued,
// nothing in flight (tcp_probe_timer runs exactly then).
func (s windowSample) shut() bool { return s.unacked == 0 && s.notsent > 0 }

// guardState is what the guard remembers between ticks.
type guardState struct {
	// lastOpen is the last time the kernel's zero-window clock was known
	// not to run: window seen open, or the queue seen empty before a
	// write armed the guard. Zero when unknown.
	lastOpen time.Time
	ut       time.Duration // the user timeout the socket holds
}

type guardAction struct {
	setUT time.Duration // user timeout to set; 0: leave it
	idle  bool          // nothing queued: the guard may disarm
	stop  bool          // the connection is over
}

// decide is one tick's decision, kept free of system calls so that its
// rules can be tested on their own.
func (p guardParams) decide(now time.Time, s windowSample, st *guardState) guardAction {
	if s.closed {
		return guardAction{stop: true}
	}
	if !s.shut() {
		st.lastOpen = now
		a := guardAction{idle: s.unacked == 0 && s.notsent == 0}
		if st.ut != p.base {
			a.setUT = p.base
		}
		return a
	}
	if s.sinceAck > p.alive+2*s.rto {
		// Probes unanswered: the peer is gone or cut off. The deadline
		// set while it answered runs out on its own.
		return guardAction{}
	}
	// The kernel counts from after the last data segment sent, and after
	// lastOpen: counting from the later of the two keeps its deadline at
	// least extend past now.
	from := now.Add(-s.sinceSend)
	if st.lastOpen.After(from) {
		from = st.lastOpen
	}
	ut := now.Sub(from) + p.extend
	ut = min((ut + time.Millisecond - 1).Truncate(time.Millisecond), MaxUserTimeout)
	if ut <= st.ut {
		return guardAction{}
	}
	return guardAction{setUT: ut}
}

// The guard's state word: bit 0 armed, bits 1 to 15 writes in progress,
// bits 16 and up a count of writes begun. A tick disarms only with a
// compare-and-swap against the word it read before sampling, so a write
// that begins meanwhile keeps it armed.
const (
	guardArmed      = 1
	guardWriteBegin = 1<<16 | 1<<1
	guardWriteEnd   = ^uint64(1<<1 - 1) // adds -2: one write fewer in progress
	guardActiveMask = 1<<16 - 2
)

type guard struct {
	state atomic.Uint64
	rc    syscall.RawConn
	p     guardParams

	mu     sync.Mutex // serialises ticks, arming and Close
	timer  *time.Timer
	st     guardState
	closed bool
	err    error // first failure of a tick, joined to write errors
}

func (g *guard) begin() {
	if g.state.Add(guardWriteBegin)&guardArmed == 0 {
		g.arm()
	}
}

func (g *guard) end() { g.state.Add(guardWriteEnd) }

// arm starts the ticks unless a tick is already due.
func (g *guard) arm() {
	if g.state.Or(guardArmed)&guardArmed != 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	if g.timer == nil {
		// First arming: whatever was written before Guard is unknown
		// to it, so st.lastOpen stays zero.
		g.timer = time.AfterFunc(g.p.period, g.tick)
		return
	}
	// A tick saw the queue empty and disarmed: the zero-window clock
	// cannot have run since.
	g.st.lastOpen = time.Now()
	g.timer.Reset(g.p.period)
}

func (g *guard) disarm() { g.state.And(^uint64(guardArmed)) }

func (g *guard) tick() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	v := g.state.Load()
	s, err := sampleWindow(g.rc)
	if err != nil {
		g.failLocked(err)
		return
	}
	a := g.p.decide(time.Now(), s, &g.st)
	if a.setUT != 0 {
		if err := setUserTimeout(g.rc, a.setUT); err != nil {
			g.failLocked(err)
			return
		}
		g.st.ut = a.setUT
	}
	switch {
	case a.stop:
		g.disarm()
		return
	case a.idle && v&guardActiveMask == 0 && g.state.CompareAndSwap(v, v&^guardArmed):
		return
	}
	g.timer.Reset(g.p.period)
}

// failLocked stops the guard after a failed tick. A closed connection is
// no failure; anything else is kept and joined to the next write error,
// since the kernel may then end a live connection the guard could not
// protect.
func (g *guard) failLocked(err error) {
	g.disarm()
	g.closed = true
	if g.err == nil && !errors.Is(err, net.ErrClosed) {
		g.err = fmt.Errorf("ghostsock: window guard stopped: %w", err)
	}
}

func (g *guard) annotate(err error) error {
	if err == nil {
		return nil
	}
	g.mu.Lock()
	gerr := g.err
	g.mu.Unlock()
	if gerr == nil {
		return err
	}
	return errors.Join(err, gerr)
}

func (g *guard) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.timer != nil {
		g.timer.Stop()
	}
}

// GuardedConn is a TCP connection that a live peer which stops reading
// cannot make the kernel end, while a dead peer still is (see Guard). It
// is a net.Conn over the *net.TCPConn that NetConn returns, and keeps the
// methods that let io.Copy use splice and sendfile (ReadFrom, WriteTo),
// CloseWrite for half-closes, and SyscallConn. Write to it, not to the
// *net.TCPConn beneath: writes the guard does not see are not guarded.
type GuardedConn struct {
	net.Conn
	tcp *net.TCPConn
	g   *guard
}

// Write writes b, arming the guard for the data it queues.
func (c *GuardedConn) Write(b []byte) (int, error) {
	c.g.begin()
	n, err := c.tcp.Write(b)
	c.g.end()
	return n, c.g.annotate(err)
}

// ReadFrom is (*net.TCPConn).ReadFrom (splice, sendfile), guarded.
func (c *GuardedConn) ReadFrom(r io.Reader) (int64, error) {
	c.g.begin()
	n, err := c.tcp.ReadFrom(r)
	c.g.end()
	return n, c.g.annotate(err)
}

// WriteTo is (*net.TCPConn).WriteTo: reading needs no guard.
func (c *GuardedConn) WriteTo(w io.Writer) (int64, error) { return c.tcp.WriteTo(w) }

// CloseWrite shuts the sending side down; the FIN waits behind queued data
// as any write does, so it arms the guard too.
func (c *GuardedConn) CloseWrite() error {
	c.g.begin()
	err := c.tcp.CloseWrite()
	c.g.end()
	return c.g.annotate(err)
}

// CloseRead shuts the reading side down.
func (c *GuardedConn) CloseRead() error { return c.tcp.CloseRead() }

// Close stops the guard and closes the connection.
func (c *GuardedConn) Close() error {
	c.g.close()
	return c.tcp.Close()
}

// SyscallConn is the socket's raw connection.
func (c *GuardedConn) SyscallConn() (syscall.RawConn, error) { return c.tcp.SyscallConn() }

// NetConn returns the *net.TCPConn beneath, as *tls.Conn's NetConn does;
// Apply and Read reach the socket through it.
func (c *GuardedConn) NetConn() net.Conn { return c.tcp }

// Guard sets c's options on conn, as Apply does, and returns it guarded:
// its writer survives a live peer that stops reading for any time, while
// a peer that vanishes is still detected within Bounds, or within
// GuardBound if it vanishes while its window is shut.
//
// Why: with a user timeout, Linux ends a connection whose peer keeps its
// receive window shut for UserTimeout, although the peer answers every
// zero-window probe (tcp_probe_timer). Raw TCP and HTTP/1.1 writers whose
// consumer may pause longer than the budget need the guard; gRPC and
// HTTP/2 do not (their transports keep reading and apply flow control per
// stream). The guard costs two atomic additions per write, and while
// data is queued one TCP_INFO read every UserTimeout/4; an idle
// connection costs nothing.
//
// conn must be the *net.TCPConn itself, before any TLS: the guard must see
// every byte written to the socket. A *tls.Conn is an error wrapping
// ErrNotTCP (guard the connection beneath it). UserTimeout must be at
// least MinGuardTimeout. Linux only: elsewhere the error wraps
// errors.ErrUnsupported. Guard a connection before writing to it.
//
// The guard puts UserTimeout back at its first tick after the window
// opens, so for up to UserTimeout/4 after a long pause the raised value
// still applies: a peer that vanishes in that moment is found that much
// later than Bounds says.
func (c Config) Guard(conn net.Conn) (*GuardedConn, error) {
	o, err := c.compileGuard()
	if err != nil {
		return nil, err
	}
	rc, err := tcpRawConn(conn)
	if err != nil {
		return nil, err
	}
	if err := rawControl(rc, o.setFD); err != nil {
		return nil, err
	}
	return o.guard(conn, rc)
}

// compileGuard is compile plus what the guard needs.
func (c Config) compileGuard() (kernelOptions, error) {
	o, err := c.compile()
	if err != nil {
		return kernelOptions{}, err
	}
	if c.UserTimeout < MinGuardTimeout {
		return kernelOptions{}, &FieldError{Field: "UserTimeout", Value: c.UserTimeout.String(),
			Limit: fmt.Sprintf("must be at least %v for Guard, which protects a user timeout", MinGuardTimeout)}
	}
	if !guardSupported {
		return kernelOptions{}, unsupported("Guard (needs TCP_INFO and Linux's zero-window rules)")
	}
	return o, nil
}

// guard wraps conn, whose options are set and whose socket rc is. A conn
// with TCP beneath but not a *net.TCPConn itself is ErrNotTCP.
func (o kernelOptions) guard(conn net.Conn, rc syscall.RawConn) (*GuardedConn, error) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil, fmt.Errorf("%w: Guard needs the *net.TCPConn itself, got %T: guard the connection beneath it", ErrNotTCP, conn)
	}
	g := &guard{rc: rc, p: newGuardParams(o.userTimeout)}
	g.st.ut = o.userTimeout
	return &GuardedConn{Conn: tc, tcp: tc, g: g}, nil
}

// GuardListener returns a listener that sets c's options on every TCP
// connection ln accepts and returns it guarded (see Guard), as a
// *GuardedConn. Connections with no TCP socket pass through, as with
// WrapListener; a TLS listener is an error from Accept: guard the
// listener beneath tls.NewListener, or let http.Server's ServeTLS do the
// TLS.
//
// Give it a plain listener (net.Listen): it sets the options on every
// connection itself, so under one from c.Listen they would be set twice.
//
// If c cannot be guarded (see Guard), every Accept returns that error.
// Failing to set the options on one connection closes it and returns a
// temporary *AcceptError.
func (c Config) GuardListener(ln net.Listener) net.Listener {
	o, err := c.compileGuard()
	return &guardListener{listener{Listener: ln, opts: o, err: err}}
}

// guardListener is WrapListener's listener, guarding what it accepts.
type guardListener struct{ listener }

func (l *guardListener) Accept() (net.Conn, error) {
	conn, err := l.listener.Accept()
	if err != nil {
		return nil, err
	}
	g, err := l.opts.guardTCP(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return g, nil
}

// guardTCP guards conn, whose options are set; a conn with no TCP socket
// comes back as it is.
func (o kernelOptions) guardTCP(conn net.Conn) (net.Conn, error) {
	rc, err := tcpRawConn(conn)
	if errors.Is(err, ErrNotTCP) {
		return conn, nil
	}
	if err != nil {
		return nil, err
	}
	return o.guard(conn, rc)
}

// GuardDialContext returns a dial function whose TCP connections carry c's
// options and come back guarded (see Guard), as *GuardedConn. With dial
// nil it dials with c.Dialer(), so the handshake is covered too; otherwise
// it calls dial and sets the options on what it returns. Use it as an
// http.Transport's DialContext: the transport does TLS on top. A dial
// that returns a *tls.Conn is an error (guard beneath TLS); connections
// with no TCP socket pass through.
func (c Config) GuardDialContext(dial DialContextFunc) DialContextFunc {
	o, err := c.compileGuard()
	if dial == nil {
		dial = c.Dialer().DialContext
	} else {
		dial = c.WrapDialContext(dial)
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if err != nil {
			return nil, err
		}
		conn, derr := dial(ctx, network, address)
		if derr != nil {
			return nil, derr
		}
		g, gerr := o.guardTCP(conn)
		if gerr != nil {
			conn.Close()
			return nil, gerr
		}
		return g, nil
	}
}
