package tuning

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// budget5 is a Config the tests set and read back from the kernel (what
// ForBudget(5s) returned before it counted the worst case).
var budget5 = Config{UserTimeout: 5 * time.Second, KeepAlive: ka(2*time.Second, time.Second, 3)}

// pair returns both ends of a loopback TCP connection made with dial and
// accepted from ln.
// loopback listens on a free loopback port until the test ends.
func loopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialWith is c's DialFunc in the shape pair takes.
func dialWith(c Config) func(network, addr string) (net.Conn, error) {
	dial := c.DialFunc(nil)
	return func(network, addr string) (net.Conn, error) { return dial(context.Background(), network, addr) }
}

func pair(t *testing.T, ln net.Listener, dial func(network, addr string) (net.Conn, error)) (client, server net.Conn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server, ok := <-accepted
	require.True(t, ok, "accept failed")
	t.Cleanup(func() { server.Close() })
	return client, server
}

func TestReadBackLinux(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "tcp6" {
				addr = "[::1]:0"
			}
			bare := budget5
			bare.NoGuard = true
			ln, err := bare.Listen(t.Context(), network, addr)
			if network == "tcp6" && err != nil {
				t.Skipf("no IPv6 loopback: %v", err)
			}
			require.NoError(t, err)
			defer ln.Close()
			_, hasFile := ln.(interface{ File() (*os.File, error) })
			_, hasDeadline := ln.(interface{ SetDeadline(time.Time) error })
			assert.True(t, hasFile && hasDeadline, "the listener keeps *net.TCPListener's File and SetDeadline")

			client, server := pair(t, ln, budget5.Dialer().Dial)
			for name, conn := range map[string]net.Conn{"dialed": client, "accepted": server} {
				got, err := Read(conn)
				require.NoError(t, err)
				assert.Equal(t, budget5, got, name)
			}

			// By default the accepted conns are guarded, their options
			// copied from the listening socket.
			gln, err := budget5.Listen(t.Context(), network, addr)
			require.NoError(t, err)
			defer gln.Close()
			_, server = pair(t, gln, budget5.Dialer().Dial)
			require.IsType(t, &GuardedConn{}, server)
			got, err := Read(server)
			require.NoError(t, err)
			assert.Equal(t, budget5.GuardHolds(), got, "guarded, at rest")
		})
	}
}

func TestWrapListener(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     Config
		check func(t *testing.T, conn net.Conn)
		want  Config
	}{
		{"guarded by default", budget5, func(t *testing.T, conn net.Conn) {
			g, ok := conn.(*GuardedConn)
			require.True(t, ok, "accepted conn is %T, want *GuardedConn", conn)
			assert.IsType(t, &net.TCPConn{}, g.NetConn())
		}, budget5.GuardHolds()},
		{"NoGuard: the same type, unguarded", Config{UserTimeout: budget5.UserTimeout, KeepAlive: budget5.KeepAlive, NoGuard: true}, func(t *testing.T, conn net.Conn) {
			require.IsType(t, &Conn{}, conn)
			assert.False(t, conn.(*Conn).Guarded())
			assert.IsType(t, &net.TCPConn{}, conn.(*Conn).NetConn())
		}, budget5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain, err := net.Listen("tcp", "127.0.0.1:0") // Go sets its own 15 s keepalive on accept
			require.NoError(t, err)
			ln := tc.c.WrapListener(plain)
			defer ln.Close()
			_, server := pair(t, ln, net.Dial)
			tc.check(t, server)
			got, err := Read(server)
			require.NoError(t, err)
			tc.want.NoGuard = false // not a socket option
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDefaultsRefuseAnUnguardableTimeout(t *testing.T) {
	short := Config{UserTimeout: 500 * time.Millisecond, IdleUnwatched: true}
	_, err := short.Listen(t.Context(), "tcp", "127.0.0.1:0")
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "UserTimeout", fe.Field)
	assert.Contains(t, fe.Limit, "NoGuard")
	_, err = short.DialFunc(nil)(t.Context(), "tcp", "127.0.0.1:1")
	assert.ErrorIs(t, err, ErrInvalidConfig)

	short.NoGuard = true
	ln, err := short.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err, "NoGuard: no guard, no limit")
	ln.Close()
}

func TestApply(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, _ := pair(t, ln, net.Dial)

	t.Run("through tls.Conn", func(t *testing.T) {
		tc := tls.Client(client, &tls.Config{InsecureSkipVerify: true}) // never handshakes
		require.NoError(t, budget5.Apply(tc))
		got, err := Read(tc)
		require.NoError(t, err)
		assert.Equal(t, budget5, got)
	})
	t.Run("a Config with nothing set clears what was set", func(t *testing.T) {
		require.NoError(t, Config{IdleUnwatched: true}.Apply(client))
		got, err := Read(client)
		require.NoError(t, err)
		assert.Equal(t, time.Duration(0), got.UserTimeout)
		assert.False(t, got.KeepAlive.Enable)
	})
	t.Run("unchanged leaves the kernel's value", func(t *testing.T) {
		require.NoError(t, budget5.Apply(client))
		c := Config{UserTimeout: time.Second, KeepAlive: net.KeepAliveConfig{Enable: true, Idle: Unchanged, Interval: 7 * time.Second, Count: Unchanged}}
		require.NoError(t, c.Apply(client))
		got, err := Read(client)
		require.NoError(t, err)
		assert.Equal(t, Config{UserTimeout: time.Second, KeepAlive: ka(2*time.Second, 7*time.Second, 3)}, got)
	})
	t.Run("closed conn", func(t *testing.T) {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		c.Close()
		err = budget5.Apply(c)
		assert.ErrorIs(t, err, net.ErrClosed)
		_, err = Read(c)
		assert.ErrorIs(t, err, net.ErrClosed)
	})
}

func TestNotTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	assert.ErrorIs(t, budget5.Apply(a), ErrNotTCP)
	_, err := Read(a)
	assert.ErrorIs(t, err, ErrNotTCP)
	assert.ErrorIs(t, budget5.Apply(nil), ErrNotTCP)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer udp.Close()
	assert.ErrorIs(t, budget5.Apply(udp.(*net.UDPConn)), ErrNotTCP)

	// Unix sockets pass through Listen, WrapListener and Dialer untouched.
	path := filepath.Join(t.TempDir(), "s")
	ln, err := budget5.Listen(t.Context(), "unix", path)
	require.NoError(t, err)
	defer ln.Close()
	wrapped := budget5.WrapListener(ln)
	client, server := pair(t, wrapped, func(string, string) (net.Conn, error) { return budget5.Dialer().Dial("unix", path) })
	assert.IsType(t, &net.UnixConn{}, client)
	assert.IsType(t, &net.UnixConn{}, server)
	assert.ErrorIs(t, budget5.Apply(client), ErrNotTCP)
}

// TestSetsockoptErrorSurfaces shows that a setsockopt the kernel refuses is
// an error the caller sees, wrapped so errors.Is finds the errno.
func TestSetsockoptErrorSurfaces(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	require.NoError(t, err)
	defer syscall.Close(fd)
	o, err := budget5.compile()
	require.NoError(t, err)
	err = o.k.Set(uintptr(fd)) // TCP options on a UDP socket
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOPROTOOPT), "%v", err)
	assert.Contains(t, err.Error(), "setsockopt TCP_USER_TIMEOUT")
}

// failingListener accepts one conn whose options cannot be set.
type failingListener struct {
	net.Listener
	conn net.Conn
}

func (l *failingListener) Accept() (net.Conn, error) { return l.conn, nil }

func TestWrapListenerApplyFailureIsTemporary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, _ := pair(t, ln, net.Dial)
	client.Close() // Accept hands out a closed conn: setting options fails
	_, err = budget5.WrapListener(&failingListener{Listener: ln, conn: client}).Accept()
	var ae *AcceptError
	require.ErrorAs(t, err, &ae)
	assert.True(t, ae.Temporary())
	assert.ErrorIs(t, err, net.ErrClosed)
}

func TestApplyNilConns(t *testing.T) {
	c := budget5
	var tcp *net.TCPConn
	var tlsConn *tls.Conn
	for _, conn := range []net.Conn{nil, tcp, tlsConn} {
		assert.ErrorIs(t, c.Apply(conn), ErrNotTCP, "%T", conn)
		_, err := Read(conn)
		assert.ErrorIs(t, err, ErrNotTCP, "%T", conn)
	}
}

func TestRTOMax(t *testing.T) {
	c := budget5
	c.RTOMax = 1500 * time.Millisecond
	c.NoGuard = true
	ln, err := c.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, server := pair(t, ln, c.Dialer().Dial)
	for name, conn := range map[string]net.Conn{"dialed": client, "accepted": server} {
		got, err := Read(conn)
		require.NoError(t, err, name)
		assert.Equal(t, c.RTOMax, got.RTOMax, name)
	}

}
