package tuning

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sync"
	"syscall"
)

// ErrNotTCP is returned by Apply and Read for a connection that has no TCP
// socket underneath (a unix socket, net.Pipe, a custom net.Conn).
var ErrNotTCP = errors.New("ghostsock: not a TCP connection")

// Control sets c's options on the socket behind rc. Its signature is that of
// net.Dialer.Control and net.ListenConfig.Control; networks other than tcp,
// tcp4 and tcp6 pass through untouched. Set on a listening socket, the
// options are inherited by every accepted socket on Linux (see Listen).
//
// Control validates c on every call; Dialer and Listen do that once.
func (c Config) Control(network, address string, rc syscall.RawConn) error {
	o, err := c.compile()
	if err != nil {
		return err
	}
	return o.control(network, address, rc)
}

func (o kernelOptions) control(network, _ string, rc syscall.RawConn) error {
	if !isTCP(network) {
		return nil
	}
	return rawControl(rc, o.setFD)
}

func isTCP(network string) bool {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return true
	}
	return false
}

// rawControl runs fn on the descriptor behind rc. It is the one place that
// calls RawConn.Control, and it keeps the two errors apart: Control's own
// (net.ErrClosed, say) is returned as is, fn's is returned as fn made it
// (an *os.SyscallError from set or get).
//
// The function handed to Control escapes, so a closure made per call would
// be allocated per dial and accept; a pooled controlCall carries fn and its
// error instead.
func rawControl(rc syscall.RawConn, fn func(fd uintptr) error) error {
	c := controlCalls.Get().(*controlCall)
	c.fn = fn
	err := rc.Control(c.run)
	fnErr := c.err
	c.fn, c.err = nil, nil
	controlCalls.Put(c)
	if err != nil {
		return fmt.Errorf("ghostsock: raw conn: %w", err)
	}
	return fnErr
}

type controlCall struct {
	fn  func(fd uintptr) error
	err error
	run func(fd uintptr) // bound to this controlCall once, when made
}

var controlCalls = sync.Pool{New: func() any {
	c := new(controlCall)
	c.run = func(fd uintptr) { c.err = c.fn(fd) }
	return c
}}

// Dialer returns a new *net.Dialer that sets c's options on every TCP socket
// it creates, before connect(2), so the handshake itself is bounded by the
// kernel where the platform applies the user timeout to it. Go's own
// keepalive defaults are switched off so they do not overwrite c.
//
// An invalid c, or one this platform cannot apply, makes every dial fail
// with the error Validate or the platform reports.
func (c Config) Dialer() *net.Dialer {
	o, err := c.compile()
	if err != nil {
		return &net.Dialer{KeepAlive: -1, Control: func(string, string, syscall.RawConn) error { return err }}
	}
	return &net.Dialer{KeepAlive: -1, Control: o.control}
}

// Listen announces on the local address like net.Listen and returns a
// listener whose accepted TCP connections carry c's options, and are
// guarded (see Guard): a live client that stops reading for longer than
// UserTimeout keeps its connection, a vanished one is still found. Bad
// input is an error before any socket is made.
//
// The guard is on wherever it applies: on Linux, with a UserTimeout (the
// rule it protects against is Linux's, and needs one). Accepted
// connections are then *GuardedConn, whose NetConn is the *net.TCPConn;
// a UserTimeout below MinGuardTimeout is an error. Set NoGuard for bare
// *net.TCPConn, as package grpcserver does: HTTP/2 never shuts the window.
//
// On Linux the options are set once, on the listening socket, and the
// kernel copies them to every accepted socket; unguarded and with no
// Observer, the listener is the one net.ListenConfig returns
// (*net.TCPListener for TCP). On other
// systems each accepted connection is set as WrapListener does.
func (c Config) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	o, err := c.compile()
	if err != nil {
		return nil, err
	}
	guarded, err := o.guardByDefault()
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{KeepAlive: -1}
	if listenerOptionsInherited {
		lc.Control = o.control
	}
	ln, err := lc.Listen(ctx, network, address)
	switch {
	case err != nil:
		return nil, err
	case guarded:
		return &guardListener{listener{Listener: ln, opts: o, inherited: listenerOptionsInherited}}, nil
	case listenerOptionsInherited && o.observer == nil:
		return ln, nil
	}
	return &listener{Listener: ln, opts: o, inherited: listenerOptionsInherited}, nil
}

// guardByDefault reports whether the entry points that guard by default
// (Listen, WrapListener, DialFunc) guard with o: where the guard applies
// and NoGuard is not set. A UserTimeout too short to guard is an error
// there, so that no default silently leaves live readers unprotected.
func (o kernelOptions) guardByDefault() (bool, error) {
	if o.noGuard || o.userTimeout == 0 || !guardSupported {
		return false, nil
	}
	if o.userTimeout < MinGuardTimeout {
		return false, &FieldError{Field: "UserTimeout", Value: o.userTimeout.String(),
			Limit: fmt.Sprintf("must be at least %v for the window guard this entry point uses by default; set NoGuard to go without it", MinGuardTimeout)}
	}
	return true, nil
}

// WrapListener returns a listener that sets c's options on every TCP
// connection ln accepts and, as Listen does, guards it where the guard
// applies (see Listen and Guard); other connections pass through. With
// NoGuard, or where no guard applies, accepted connections keep their own
// type (*net.TCPConn stays *net.TCPConn). Either way sendfile and splice
// keep working.
//
// If c is invalid, Accept returns the validation error without accepting
// anything, and servers stop with it. If setting the options on one
// accepted connection fails, that connection is closed and Accept returns a
// temporary *AcceptError, so that http.Server and grpc.Server back off and
// go on serving.
func (c Config) WrapListener(ln net.Listener) net.Listener {
	o, err := c.compile()
	if err != nil {
		return &listener{Listener: ln, err: err}
	}
	guarded, err := o.guardByDefault()
	l := listener{Listener: ln, opts: o, err: err}
	if guarded {
		return &guardListener{l}
	}
	return &l
}

type listener struct {
	net.Listener
	opts      kernelOptions
	err       error // from compile: returned by every Accept
	inherited bool  // the kernel copied the options from the listening socket
}

func (l *listener) Accept() (net.Conn, error) {
	conn, err := l.accept()
	if err != nil {
		return nil, err
	}
	return observe(l.opts.observer, SideAccepted, conn), nil
}

// accept accepts a connection and sets the options on it.
func (l *listener) accept() (net.Conn, error) {
	if l.err != nil {
		return nil, l.err
	}
	conn, err := l.Listener.Accept()
	if err != nil || l.inherited {
		return conn, err
	}
	if err := l.opts.apply(conn); err != nil && !errors.Is(err, ErrNotTCP) {
		conn.Close()
		return nil, &AcceptError{Err: err}
	}
	return conn, nil
}

// AcceptError is returned by a wrapped listener's Accept when the options
// could not be set on an accepted connection, which has been closed. It is
// temporary: servers that honour net.Error's Temporary retry the accept.
type AcceptError struct {
	Err error
}

func (e *AcceptError) Error() string   { return "ghostsock: accepted conn closed: " + e.Err.Error() }
func (e *AcceptError) Unwrap() error   { return e.Err }
func (e *AcceptError) Timeout() bool   { return false }
func (e *AcceptError) Temporary() bool { return true }

// Apply sets c's options on a connection that is already open. It reaches
// through *tls.Conn and any other wrapper with a NetConn() net.Conn method
// to the socket beneath. A connection with no TCP socket is ErrNotTCP; a
// closed one is an error wrapping net.ErrClosed.
func (c Config) Apply(conn net.Conn) error {
	o, err := c.compile()
	if err != nil {
		return err
	}
	return o.apply(conn)
}

func (o kernelOptions) apply(conn net.Conn) error {
	rc, err := tcpRawConn(conn)
	if err != nil {
		return err
	}
	return rawControl(rc, o.setFD)
}

// Read returns what the kernel holds for conn's socket, read back with
// getsockopt(2): the user timeout, and SO_KEEPALIVE with its idle, interval
// and count (read even when keepalive is off). Compare it with the Config
// you set, with zero keepalive fields replaced by Go's defaults (15 s,
// 15 s, 9).
func Read(conn net.Conn) (Config, error) {
	rc, err := tcpRawConn(conn)
	if err != nil {
		return Config{}, err
	}
	return ReadRawConn(rc)
}

// ReadRawConn is Read for the socket behind rc, which must be TCP: an
// *os.File's SyscallConn, for example. (net.FileConn is no way to get a
// net.Conn for Read: it turns Go's default keepalive on as it wraps.)
func ReadRawConn(rc syscall.RawConn) (Config, error) {
	var c Config
	err := rawControl(rc, func(fd uintptr) (err error) {
		c, err = get(fd)
		return err
	})
	return c, err
}

// tcpRawConn unwraps conn to the RawConn of its TCP socket. A nil conn,
// or a nil pointer in an interface (whose methods would panic), is
// ErrNotTCP.
func tcpRawConn(conn net.Conn) (syscall.RawConn, error) {
	for {
		if conn != nil {
			if v := reflect.ValueOf(conn); v.Kind() == reflect.Pointer && v.IsNil() {
				return nil, fmt.Errorf("%w: nil %T", ErrNotTCP, conn)
			}
		}
		switch tc := conn.(type) {
		case *net.TCPConn:
			rc, err := tc.SyscallConn()
			if err != nil {
				return nil, fmt.Errorf("ghostsock: %w", err)
			}
			return rc, nil
		case interface{ NetConn() net.Conn }: // *tls.Conn and friends
			conn = tc.NetConn()
		case nil:
			return nil, fmt.Errorf("%w: nil", ErrNotTCP)
		default:
			return nil, fmt.Errorf("%w: %T", ErrNotTCP, conn)
		}
	}
}

// DialContextFunc is the shape of net.Dialer.DialContext, and of
// http.Transport's DialContext and DialTLSContext fields.
type DialContextFunc = func(ctx context.Context, network, address string) (net.Conn, error)

// WrapDialContext returns a dial function that calls dial and sets c's
// options on the TCP connection it returns (reaching through *tls.Conn),
// for dialers you do not own: a service mesh's, a TLS dialer, a proxy's.
// Connections with no TCP socket pass through. If the options cannot be
// set, the connection is closed and the dial fails with that error; an
// invalid c fails every dial before dial is called.
//
// Prefer Dialer where you can: it sets the options before connect(2), so
// the handshake is covered too. WrapDialContext never guards: see DialFunc
// for the dial function that does where the guard applies.
func (c Config) WrapDialContext(dial DialContextFunc) DialContextFunc {
	o, err := c.compile()
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if err != nil {
			return nil, err
		}
		conn, derr := dial(ctx, network, address)
		if derr != nil {
			return nil, derr
		}
		if aerr := o.apply(conn); aerr != nil && !errors.Is(aerr, ErrNotTCP) {
			conn.Close()
			return nil, aerr
		}
		return observe(o.observer, SideDialed, conn), nil
	}
}

// DialFunc returns the dial function the kit's own clients use (package
// httptransport): connections dialed with c's options and, where the
// guard applies (Linux, a UserTimeout, NoGuard not set), guarded as
// GuardDialContext guards them; otherwise as Dialer or WrapDialContext
// dial. With dial nil it dials with c.Dialer(). A UserTimeout too short
// to guard fails every dial (see Listen).
func (c Config) DialFunc(dial DialContextFunc) DialContextFunc {
	o, err := c.compile()
	if err == nil {
		var guarded bool
		if guarded, err = o.guardByDefault(); err == nil && guarded {
			return c.GuardDialContext(dial)
		}
	}
	if err != nil {
		return func(context.Context, string, string) (net.Conn, error) { return nil, err }
	}
	if dial != nil {
		return c.WrapDialContext(dial)
	}
	d := c.Dialer()
	if o.observer == nil {
		return d.DialContext
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return observe(o.observer, SideDialed, conn), nil
	}
}
