package tuning

import (
	"crypto/sha256"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ghostsock/ghostsock/internal/sockopt"
)

// guardUT is the user timeout of the loopback guard tests: the smallest
// the guard takes, so that three of them pass quickly.
var guardUT = Config{UserTimeout: time.Second, KeepAlive: ka(time.Second, time.Second, 1)}

// shrinkBuffers makes the window shut after a few hundred KiB instead of
// several MiB, so the writer blocks at once.
func shrinkBuffers(t *testing.T, conn net.Conn, opt int) {
	t.Helper()
	rc, err := conn.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	require.NoError(t, sockopt.Control(rc, func(fd uintptr) error {
		return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, 64<<10)
	}))
}

// writeAll writes n bytes of a counting pattern to w, then half-closes it,
// and reports the error.
func writeAll(w interface {
	io.Writer
	CloseWrite() error
}, n int) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, io.LimitReader(&counter{}, int64(n)))
		if err == nil {
			err = w.CloseWrite()
		}
		errc <- err
	}()
	return errc
}

type counter struct{ b byte }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.b
		c.b++
	}
	return len(p), nil
}

func TestGuardSurvivesPausedReader(t *testing.T) {
	const size, pause = 8 << 20, 3 * time.Second // pause: three user timeouts
	listen := func(t *testing.T) net.Listener {
		ln, err := guardUT.Listen(t.Context(), "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	t.Run("guarded writer: survives, every byte arrives", func(t *testing.T) {
		t.Parallel()
		client, server := pair(t, listen(t), guardUT.Dialer().Dial)
		shrinkBuffers(t, server, unix.SO_RCVBUF)
		g, err := guardUT.Guard(client)
		require.NoError(t, err)
		defer g.Close()
		written := writeAll(g, size)
		time.Sleep(pause)
		got := sha256.New()
		n, err := io.Copy(got, server)
		require.NoError(t, err, "reader after %d bytes", n)
		require.NoError(t, <-written, "writer")
		want := sha256.New()
		io.Copy(want, io.LimitReader(&counter{}, size))
		assert.Equal(t, int64(size), n)
		assert.Equal(t, want.Sum(nil), got.Sum(nil))
		// The guard disarms, putting the configured user timeout back,
		// within alive, linger and a period of the last write (a calm
		// sample may move its next tick to alive after it), plus an RTO
		// and margin for a loaded machine.
		p := guardUT.guardParams()
		assert.Eventually(t, func() bool {
			cfg, err := Read(g)
			return err == nil && cfg.UserTimeout == guardUT.UserTimeout
		}, p.Alive+p.Linger+p.Period+LANRTOMax+200*time.Millisecond, 50*time.Millisecond,
			"user timeout restored once the writes ended")
	})
	t.Run("control, unguarded: the kernel ends it", func(t *testing.T) {
		t.Parallel()
		client, server := pair(t, listen(t), guardUT.Dialer().Dial)
		shrinkBuffers(t, server, unix.SO_RCVBUF)
		written := writeAll(client.(*net.TCPConn), size)
		select {
		case err := <-written:
			assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		case <-time.After(pause):
			t.Fatal("the unguarded writer outlived three user timeouts: the control no longer shows the kernel rule")
		}
	})
}

func TestGuardRejects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, _ := pair(t, ln, net.Dial)

	_, err = Config{UserTimeout: 500 * time.Millisecond, IdleUnwatched: true}.Guard(client)
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "UserTimeout", fe.Field)
	assert.Contains(t, fe.Limit, "NoGuard")
	assert.ErrorIs(t, err, ErrInvalidConfig)

	_, err = Config{UserTimeout: -1}.Guard(client)
	assert.ErrorIs(t, err, ErrInvalidConfig)

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_, err = guardUT.Guard(a)
	assert.ErrorIs(t, err, ErrNotTCP)
}

func TestGuardListenerAndDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gln := guardUT.GuardListener(ln)
	defer gln.Close()
	client, server := pair(t, gln, func(network, addr string) (net.Conn, error) {
		return guardUT.GuardDialContext(nil)(t.Context(), network, addr)
	})
	for name, conn := range map[string]net.Conn{"dialed": client, "accepted": server} {
		_, ok := conn.(*GuardedConn)
		require.True(t, ok, "%s: got %T", name, conn)
		got, err := Read(conn)
		require.NoError(t, err, name)
		assert.Equal(t, guardUT.UserTimeout, got.UserTimeout, name)
	}
	msg := []byte("through the guard")
	_, err = client.Write(msg)
	require.NoError(t, err)
	buf := make([]byte, len(msg))
	_, err = io.ReadFull(server, buf)
	require.NoError(t, err)
	assert.Equal(t, msg, buf)

	bad := Config{}.GuardListener(ln)
	_, err = bad.Accept()
	assert.ErrorIs(t, err, ErrInvalidConfig, "a Config the guard cannot take fails every Accept")
	_, err = Config{}.GuardDialContext(nil)(t.Context(), "tcp", ln.Addr().String())
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// A connection whose requests are answered as they come is not ticked: the
// send hold's calm samples move the guard's next tick ahead of them
// (Guard.CalmAt), where without them a lingering guard ticks once per linger.
func TestGuardQuietWhileAnswered(t *testing.T) {
	c, client, server := defaultPair(t)
	go func() { // the answers, a write each, as a server's are
		b := make([]byte, 64)
		for _, err := io.ReadFull(server, b); err == nil; _, err = io.ReadFull(server, b) {
			if _, err := server.Write(b); err != nil {
				return
			}
		}
	}()
	const every, span = 50 * time.Millisecond, 4 * time.Second
	linger := c.guardParams().Linger
	require.Less(t, linger, span/3, "the run spans three lingers")
	b := make([]byte, 64)
	for next, end := time.Now(), time.Now().Add(span); next.Before(end); next = next.Add(every) {
		time.Sleep(time.Until(next))
		_, err := client.Write(b)
		require.NoError(t, err)
		_, err = io.ReadFull(client, b)
		require.NoError(t, err)
	}
	for name, conn := range map[string]net.Conn{"dialed": client, "accepted": server} {
		ticks, _ := guardTicks(t, conn)
		t.Logf("%s: %d guard ticks in %v of a request every %v (linger %v)", name, ticks, span, every, linger)
		// The tick after the arming; one more if a sample ran late.
		assert.LessOrEqual(t, ticks, 2, "%s: ticked while every request was answered", name)
	}
}

// A proxy's io.Copy from an idle socket into a guarded Conn (ReadFrom,
// splice) ticks the guard no more than an idle Write loop does: the copy
// waits for the source outside the guard's bracket.
func TestGuardQuietWhileCopyingIdleSocket(t *testing.T) {
	c, client, server := defaultPair(t)
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer plain.Close()
	srcWriter, src := pair(t, plain, net.Dial)
	defer srcWriter.Close()
	defer src.Close()
	copied := make(chan error, 1)
	go func() { _, err := io.Copy(server, src); copied <- err }() // (*Conn).ReadFrom: splice
	msg := []byte("through the proxy")
	_, err = srcWriter.Write(msg)
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(client, got)
	require.NoError(t, err)
	assert.Equal(t, msg, got)
	const idle = 4 * time.Second
	linger := c.guardParams().Linger
	require.Less(t, linger, idle/3, "the idle spell spans three lingers")
	time.Sleep(idle)
	ticks, armed := guardTicks(t, server)
	t.Logf("%d guard ticks in %v of an idle copy (linger %v), armed at the end: %v", ticks, idle, linger, armed)
	assert.LessOrEqual(t, ticks, 3, "ticked while the copy waited for its source")
	assert.False(t, armed, "the guard disarms once the copy waits")
	// The copy still moves what comes, and ends at the source's end.
	_, err = srcWriter.Write(msg)
	require.NoError(t, err)
	_, err = io.ReadFull(client, got)
	require.NoError(t, err)
	require.NoError(t, srcWriter.Close())
	select {
	case err := <-copied:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the copy did not end at its source's end")
	}
}

// defaultPair is a loopback pair through ForBudget(3s)'s default entry
// points (Listen and DialFunc: both ends guarded), closed at the test's end.
func defaultPair(t *testing.T) (c Config, client, server net.Conn) {
	t.Helper()
	c, err := ForBudget(3 * time.Second)
	require.NoError(t, err)
	ln, err := c.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	client, server = pair(t, ln, func(network, addr string) (net.Conn, error) {
		return c.DialFunc(nil)(t.Context(), network, addr)
	})
	t.Cleanup(func() { client.Close(); server.Close() })
	return c, client, server
}

// guardTicks reports how many ticks conn's guard has run, and whether it
// is armed.
func guardTicks(t *testing.T, conn net.Conn) (ticks int, armed bool) {
	t.Helper()
	g := conn.(*Conn).s.guard.Load()
	require.NotNil(t, g, "guarded")
	return g.Ticks()
}
