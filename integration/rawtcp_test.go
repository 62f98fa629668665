//go:build linux

package integration

import (
	"context"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// tcpPair is lab.TCPPair for a test: both ends are closed when it ends.
func tcpPair(t *testing.T, l *lab.Lab, listen func(context.Context, string, string) (net.Listener, error), dial func(string, string) (net.Conn, error)) (client, server net.Conn) {
	t.Helper()
	client, server, err := l.TCPPair(listen, dial)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func readErr(c net.Conn) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c)
		if err == nil {
			err = io.EOF
		}
		errc <- err
	}()
	return errc
}

// writeErr writes to c as fast as it can until a write fails, and returns
// that error.
func writeErr(c net.Conn) <-chan error { return writeLoop(c, 32<<10, 0) }

// writeLoop writes size bytes to c every gap until a write fails, and
// returns that error.
func writeLoop(c net.Conn, size int, gap time.Duration) <-chan error {
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, size)
		for {
			if _, err := c.Write(buf); err != nil {
				errc <- err
				return
			}
			if gap > 0 {
				time.Sleep(gap)
			}
		}
	}()
	return errc
}

// TestRawTCP: each end of a raw TCP connection, idle or busy, finds its
// vanished peer within the bound, and so does a dial. It runs before the
// parallel tests, its cells beside each other only: its writers are held to
// the busy bound (see the package doc).
func TestRawTCP(t *testing.T) {
	c := kit(t)
	idleBound, busyBound := windows(c)
	plainListen := (&net.ListenConfig{}).Listen

	t.Run("client idle, server vanishes", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		client, _ := tcpPair(t, l, plainListen, c.Dialer().Dial)
		require.NoError(t, l.Vanish(lab.Server))
		start := time.Now()
		end, err := waitErr(t, readErr(client), 3*idleBound.bound)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "raw TCP idle (Dialer)", end.Sub(start), idleBound)
	})
	t.Run("client busy, server vanishes", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		client, _ := tcpPair(t, l, plainListen, c.Dialer().Dial)
		require.NoError(t, l.Vanish(lab.Server))
		start := time.Now()
		end, err := waitErr(t, writeErr(client), 3*busyBound.bound)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "raw TCP busy (Dialer)", end.Sub(start), busyBound)
	})
	t.Run("server idle, client vanishes", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		_, server := tcpPair(t, l, c.Listen, net.Dial)
		require.NoError(t, l.Vanish(lab.Client))
		start := time.Now()
		end, err := waitErr(t, readErr(server), 3*idleBound.bound)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "raw TCP idle (Listen)", end.Sub(start), idleBound)
	})
	t.Run("server busy, client vanishes", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		_, server := tcpPair(t, l, c.Listen, net.Dial)
		require.NoError(t, l.Vanish(lab.Client))
		start := time.Now()
		end, err := waitErr(t, writeErr(server), 3*busyBound.bound)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "raw TCP busy (Listen)", end.Sub(start), busyBound)
	})
	t.Run("dial to a vanished address", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		ln, err := l.Listen(plainListen, "tcp", l.ServerAddrPort(0))
		require.NoError(t, err)
		defer ln.Close()
		require.NoError(t, l.Vanish(lab.Server))
		start := time.Now()
		_, err = c.Dialer().Dial("tcp", ln.Addr().String())
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "raw TCP dial", time.Since(start), busyBound)
	})
	t.Run("IPv6 idle", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		ln, err := l.Listen(plainListen, "tcp6", net.JoinHostPort(l.ServerAddr6.String(), "0"))
		require.NoError(t, err)
		defer ln.Close()
		go func() {
			if s, err := ln.Accept(); err == nil {
				defer s.Close()
				io.Copy(io.Discard, s)
			}
		}()
		client, err := c.Dialer().Dial("tcp6", ln.Addr().String())
		require.NoError(t, err)
		defer client.Close()
		held, err := tuning.Read(client)
		require.NoError(t, err)
		assert.Equal(t, c, held)
		require.NoError(t, l.Vanish(lab.Server))
		start := time.Now()
		end, err := waitErr(t, readErr(client), 3*idleBound.bound)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "raw TCP idle IPv6", end.Sub(start), idleBound)
	})
}

func TestRawTCPControl(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	// Stock Go: keepalive 15 s idle, no user timeout.
	client, _ := tcpPair(t, l, (&net.ListenConfig{}).Listen, net.Dial)
	require.NoError(t, l.Vanish(lab.Server))
	start := time.Now()
	errc := writeErr(client) // busy: retransmitting under tcp_retries2
	stillEstablished(t, rawConn(t, client), start)
	select {
	case err := <-errc:
		t.Fatalf("stock connection failed: %v", err)
	default:
	}
}

// TestSteadyWriter: a writer that keeps writing into a dead path is found
// within the busy bound too. Its new data does not push the first RTO
// retransmission back: the tail-loss probe goes about an RTO after the
// loss, the first RTO retransmission an RTO later, and the user timeout
// runs from there: about UT plus two RTOs, which this test logs (and
// ghostbench part 5 repeats 50 times at two budgets).
func TestSteadyWriter(t *testing.T) {
	t.Parallel()
	c := kit(t)
	_, busyBound := windows(c)
	l := newLab(t)
	client, server := tcpPair(t, l, c.Listen, c.Dialer().Dial)
	go io.Copy(io.Discard, server)                      // a reader that keeps up
	errc := writeLoop(client, 1024, 5*time.Millisecond) // as a streaming server writes
	time.Sleep(time.Second)
	require.NoError(t, l.Vanish(lab.Server)) // the peer's side only: the writer's sends meet no local error
	start := time.Now()
	end, err := waitErr(t, errc, 3*busyBound.bound)
	assert.ErrorIs(t, err, syscall.ETIMEDOUT)
	expectWithin(t, "raw TCP steady writer", end.Sub(start), busyBound)
}
