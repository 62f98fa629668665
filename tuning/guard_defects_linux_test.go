package tuning

import (
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Each test here failed against the first guard (the one that raised the
// user timeout from its own estimate of the kernel's zero-window clock).

// readSlowly reads r as a rate-limited client does: it pauses, then reads
// chunk bytes every gap for slowFor, then the rest at full speed. It
// returns the count and the SHA-256 of what it read.
func readSlowly(r io.Reader, pause time.Duration, chunk int, gap, slowFor time.Duration) (int64, []byte, error) {
	h := sha256.New()
	time.Sleep(pause)
	var n int64
	for end := time.Now().Add(slowFor); time.Now().Before(end); time.Sleep(gap) {
		m, err := io.CopyN(h, r, int64(chunk))
		n += m
		if err != nil {
			return n, nil, err
		}
	}
	m, err := io.Copy(h, r)
	return n + m, h.Sum(nil), err
}

func patternSum(n int) []byte {
	h := sha256.New()
	io.Copy(h, io.LimitReader(&counter{}, int64(n)))
	return h.Sum(nil)
}

func guardedPair(t *testing.T) (*GuardedConn, net.Conn) {
	t.Helper()
	ln, err := guardUT.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	client, server := pair(t, ln, guardUT.Dialer().Dial)
	shrinkBuffers(t, server, unix.SO_RCVBUF)
	g, err := guardUT.Guard(client)
	require.NoError(t, err)
	t.Cleanup(func() { g.Close() })
	return g, server
}

// A partial reopening of the window does not restart the kernel's
// zero-window clock (tcp_ack_probe clears icsk_probes_tstamp only for a
// window that takes the whole head skb), and data then flows on that old
// clock. The first guard read the flowing data as an open window, put the
// user timeout back and the kernel cut the live reader (ETIMEDOUT at
// 4.3 to 4.6 s).
func TestGuardSurvivesPartialReopenings(t *testing.T) {
	const size = 4 << 20
	t.Run("guarded: pause 2.5 s, then 24 KiB every 150 ms", func(t *testing.T) {
		t.Parallel()
		g, server := guardedPair(t)
		written := writeAll(g, size)
		n, sum, err := readSlowly(server, 2500*time.Millisecond, 24<<10, 150*time.Millisecond, 4*time.Second)
		require.NoError(t, err, "reader after %d bytes", n)
		require.NoError(t, <-written, "writer")
		assert.Equal(t, int64(size), n)
		assert.Equal(t, patternSum(size), sum)
	})
	t.Run("control, unguarded: a pause shorter than the user timeout, then slow reads", func(t *testing.T) {
		t.Parallel()
		ln, err := guardUT.Listen(t.Context(), "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		client, server := pair(t, ln, guardUT.Dialer().Dial)
		shrinkBuffers(t, server, unix.SO_RCVBUF)
		// More than the writer's send buffer (autotuned up to 4 MiB)
		// holds, so that the write is still blocked when the kernel acts.
		written := writeAll(client.(*net.TCPConn), 8*size)
		start := time.Now()
		go readSlowly(server, 600*time.Millisecond, 24<<10, 150*time.Millisecond, 10*time.Second)
		select {
		case err := <-written:
			t.Logf("the unguarded writer was cut after %v", time.Since(start).Round(time.Millisecond))
			assert.ErrorIs(t, err, syscall.ETIMEDOUT, "the kernel rule: the old clock runs on")
		case <-time.After(8 * time.Second):
			t.Fatal("the unguarded writer was not cut: the control no longer shows the kernel rule")
		}
	})
}

// io.Copy(guarded, *os.File) takes *os.File's WriteTo, which reached the
// socket through SyscallConn and sent with sendfile where the guard never
// saw it ("sendfile: connection timed out" after 1.48 s).
func TestGuardSendfile(t *testing.T) {
	const size = 16 << 20
	path := filepath.Join(t.TempDir(), "body")
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = io.Copy(f, io.LimitReader(&counter{}, size))
	require.NoError(t, err)
	_, err = f.Seek(0, io.SeekStart)
	require.NoError(t, err)
	defer f.Close()

	g, server := guardedPair(t)
	written := make(chan error, 1)
	go func() {
		_, err := io.Copy(g, f)
		if err == nil {
			err = g.CloseWrite()
		}
		written <- err
	}()
	time.Sleep(3 * guardUT.UserTimeout)
	h := sha256.New()
	n, err := io.Copy(h, server)
	require.NoError(t, err, "reader after %d bytes", n)
	require.NoError(t, <-written, "writer")
	assert.Equal(t, int64(size), n)
	assert.Equal(t, patternSum(size), h.Sum(nil))
}

// A guarded conn dropped without Close while data waits must not keep its
// socket alive: the first guard's timer held the socket, so the netFD's
// finalizer never ran and the peer never saw the end.
func TestGuardDroppedConnIsCollected(t *testing.T) {
	ln, err := guardUT.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	// Nothing but g may hold the dialed conn: no t.Cleanup closing it.
	client, err := guardUT.Dialer().Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server := <-accepted
	require.NotNil(t, server)
	defer server.Close()
	shrinkBuffers(t, server, unix.SO_RCVBUF)
	g, err := guardUT.Guard(client)
	require.NoError(t, err)
	client = nil
	buf := make([]byte, 1<<20)
	require.NoError(t, g.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
	for {
		if _, err := g.Write(buf); err != nil {
			require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "filling the window: %v", err)
			break
		}
	}
	g = nil // dropped, never closed
	for range 5 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, server.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.Copy(io.Discard, server)
	assert.NoError(t, err, "the dropped conn's socket is closed: the reader sees EOF")
}
