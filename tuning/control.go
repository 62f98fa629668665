package tuning

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/internal/sockopt"
)

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
	return sockopt.Control(rc, o.setFD)
}

func isTCP(network string) bool {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return true
	}
	return false
}

// DialTimeout is the Timeout of the *net.Dialer that Dialer returns, and
// so of every dial the kit makes itself: http.DefaultTransport's 30 s. It
// bounds the name lookup too, which the user timeout does not.
const DialTimeout = 30 * time.Second

// Dialer returns a new *net.Dialer that sets c's options on every TCP socket
// it creates, before connect(2), so that the user timeout bounds the
// handshake too (Rule 4 in the package doc). Its Timeout is DialTimeout;
// Go's own keepalive defaults are off, so that they do not overwrite c. It
// dials bare *net.TCPConn, with no guard or send hold: DialFunc hands out
// the kit's *Conn. An invalid c, or one this platform cannot apply, makes
// every dial fail with the error Validate or the platform reports.
func (c Config) Dialer() *net.Dialer {
	o, err := c.compile()
	if err != nil {
		return &net.Dialer{Timeout: DialTimeout, KeepAlive: -1, Control: func(string, string, syscall.RawConn) error { return err }}
	}
	return o.dialer()
}

func (o *kernelOptions) dialer() *net.Dialer {
	return &net.Dialer{Timeout: DialTimeout, KeepAlive: -1, Control: o.control}
}

// Listen announces on the local address as net.Listen does and returns a
// listener that hands out every accepted TCP connection as a *Conn with c's
// options, guarded where the guard applies (Linux, a UserTimeout, NoGuard
// unset: see "The window guard" in the package doc). An invalid c is an
// error before any socket is made. ctx is used while resolving the address,
// as in net.ListenConfig.Listen, and does not affect the listener. On Linux
// the options are set once, on the listening socket, which the kernel
// copies to every accepted one; elsewhere each accepted connection is set.
// Accept's errors are as WrapListener's. The listener keeps
// (*net.TCPListener)'s File, SetDeadline and SyscallConn.
func (c Config) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	o, err := c.compile()
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{KeepAlive: -1}
	if sockopt.ListenerInherits {
		lc.Control = o.control
	}
	ln, err := lc.Listen(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &listener{Listener: ln, opts: &o, mode: guardDefault, preset: sockopt.ListenerInherits}, nil
}

// WrapListener returns a listener that hands out every TCP connection ln
// accepts as Listen does; other connections pass through. On a listener of
// the kit's, connections are handled once and c takes over their options
// (as Apply does). Put it beneath any wrapper of your own:
// tls.NewListener(c.WrapListener(ln), cfg). A failure on one connection
// closes it and is a temporary *AcceptError, so that http.Server and
// grpc.Server go on serving: the options' error, or a *WrapperError where a
// wrapper hides the socket or writes to it (a TLS listener's, unless
// NoGuard is set). An invalid c is returned by every Accept as it is.
func (c Config) WrapListener(ln net.Listener) net.Listener {
	o, err := c.compile()
	return &listener{Listener: ln, opts: &o, err: err, mode: guardDefault}
}

// Apply sets c's options on a connection that is already open, reaching
// through *tls.Conn and any other wrapper with a NetConn() net.Conn method
// to the socket beneath. On the kit's own *Conn it reconfigures: the Conn
// takes c's options and its guard, if any, c's timings (an armed guard
// holds the user timeout at 0 until its next verdict); its Observers and
// guard stay. A connection with no TCP socket is ErrNotTCP; a closed one is
// an error wrapping net.ErrClosed.
func (c Config) Apply(conn net.Conn) error {
	o, err := c.compile()
	if err != nil {
		return err
	}
	r, err := reach(conn)
	switch {
	case err != nil:
		return err
	case r.kit != nil:
		return r.kit.s.reconfigure(&o)
	}
	return sockopt.Control(r.rc, o.setFD)
}

// Read returns what the kernel holds for conn's socket, read back with
// getsockopt(2): the user timeout, SO_KEEPALIVE with its idle, interval
// and count (read even when keepalive is off), and RTOMax (0 for the
// kernel's own). Zero keepalive fields of the Config set read as Go's
// defaults (15 s, 15 s, 9). An armed guard holds a user timeout of 0 (see
// GuardHolds); Inspect reports the one the guard enforces.
func Read(conn net.Conn) (Config, error) {
	r, err := reach(conn)
	if err != nil {
		return Config{}, err
	}
	return ReadRawConn(r.rc)
}

// ReadRawConn is Read for the socket behind rc, which must be TCP: an
// *os.File's SyscallConn, for example. (net.FileConn is no way to get a
// net.Conn for Read: it turns Go's default keepalive on as it wraps.)
func ReadRawConn(rc syscall.RawConn) (Config, error) {
	var c Config
	err := sockopt.Control(rc, func(fd uintptr) (err error) {
		c, err = get(fd)
		return err
	})
	return c, err
}

// DialContextFunc is the shape of net.Dialer.DialContext, and of
// http.Transport's DialContext and DialTLSContext fields.
type DialContextFunc = func(ctx context.Context, network, address string) (net.Conn, error)

// DialFunc returns the dial function the kit's own clients use (package
// httptransport): TCP connections dialed with c's options and handed out
// as *Conn, guarded where the guard applies (Linux, a UserTimeout,
// NoGuard not set). With dial nil it dials with c.Dialer(), so the
// handshake is covered too; otherwise it calls dial and sets the options
// on what it returns, which may be the kit's already (handled once, see
// WrapListener). A dial that returns a connection beneath a wrapper of its
// own (a TLS dialer) fails with a *WrapperError unless NoGuard is set:
// guard beneath TLS, as http.Transport's DialContext does.
func (c Config) DialFunc(dial DialContextFunc) DialContextFunc {
	return c.dialFunc(dial, guardDefault)
}

// ConnDialer dials as DialFunc(nil) does, for clients that take a dialer
// with methods rather than a function (Dial, DialTimeout or DialContext:
// nats.SetCustomDialer, lib/pq's Connector.Dialer, x/net/proxy.ContextDialer).
// Make one with Config.ConnDialer: a zero ConnDialer's dials fail.
type ConnDialer struct {
	// Timeout bounds each dial; 0 sets no bound of its own. DialTimeout
	// applies too, so a longer Timeout has no effect. Config.ConnDialer sets
	// it to DialTimeout; set it to a client's connect timeout where the
	// client applies that only to dialers it makes itself (nats.Timeout).
	Timeout time.Duration
	dial    DialContextFunc
}

// errNoConnDialer is the error of a ConnDialer not made by Config.ConnDialer.
var errNoConnDialer = errors.New("ghostsock: a ConnDialer must come from Config.ConnDialer")

// ConnDialer returns a ConnDialer for c, its Timeout DialTimeout.
func (c Config) ConnDialer() *ConnDialer {
	return &ConnDialer{Timeout: DialTimeout, dial: c.DialFunc(nil)}
}

// Dial dials address on network within d.Timeout.
func (d *ConnDialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialTimeout dials address on network within timeout (0: none of its
// own), and d.Timeout if shorter (lib/pq's Dialer has this method).
func (d *ConnDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return d.DialContext(ctx, network, address)
}

// DialContext dials address on network within d.Timeout and ctx.
func (d *ConnDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if d.dial == nil {
		return nil, errNoConnDialer
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	return d.dial(ctx, network, address)
}

// WrapDialContext is DialFunc that never guards: it sets c's options on
// what dial returns and passes a wrapper (a *tls.Conn) through with the
// options set beneath it. c is validated as given (a UserTimeout under
// MinGuardTimeout needs NoGuard).
//
// Deprecated: set NoGuard and use DialFunc, which does the same.
func (c Config) WrapDialContext(dial DialContextFunc) DialContextFunc {
	return c.dialFunc(dial, guardNever)
}

// dialFunc is every dial function's: dial, then handle.
func (c Config) dialFunc(dial DialContextFunc, mode guardMode) DialContextFunc {
	var o kernelOptions
	var err error
	if mode == guardAlways {
		o, err = c.compileGuard()
	} else {
		o, err = c.compile()
	}
	if err != nil {
		return func(context.Context, string, string) (net.Conn, error) { return nil, err }
	}
	preset := dial == nil
	if preset {
		dial = o.dialer().DialContext
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		conn, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		h, err := o.handle(conn, SideDialed, mode, preset)
		if err != nil {
			conn.Close()
			return nil, err
		}
		return h, nil
	}
}

// get reads back what sockopt.Options.Set sets, as a Config.
func get(fd uintptr) (Config, error) {
	h, err := sockopt.Get(fd)
	if err != nil {
		return Config{}, err
	}
	var c Config
	c.UserTimeout = h.UserTimeout
	c.KeepAlive.Enable = h.KeepAlive
	c.KeepAlive.Idle = h.Idle
	c.KeepAlive.Interval = h.Interval
	c.KeepAlive.Count = h.Count
	if h.RTOMax != MaxRTOMax { // the kernel's own cap reads as 0, as Config says
		c.RTOMax = h.RTOMax
	}
	return c, nil
}
