//go:build linux

package integration

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/integration/testsvc"
	"github.com/ghostsock/ghostsock/tuning"
)

// The window guard (tuning.Guard) against the rule TestZeroWindow shows:
// with it, a live reader may pause for three budgets and every byte still
// arrives; a reader that vanishes while paused is still found.

const pausedSize = 64 << 20 // far more than any socket buffer: the window shuts

func guardedDial(c tuning.Config) func(string, string) (net.Conn, error) {
	dial := c.GuardDialContext(nil)
	return func(network, addr string) (net.Conn, error) { return dial(context.Background(), network, addr) }
}

// guardedListen listens with no options of its own: GuardListener sets
// them on every connection.
func guardedListen(c tuning.Config) func(context.Context, string, string) (net.Listener, error) {
	return func(ctx context.Context, network, addr string) (net.Listener, error) {
		ln, err := (&net.ListenConfig{}).Listen(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return c.GuardListener(ln), nil
	}
}

// readPaused reads 1 MiB of r, pauses, then reads the rest, and returns
// how many bytes it read and their SHA-256.
func readPaused(r io.Reader, pause time.Duration) (int64, []byte, error) {
	h := sha256.New()
	n, err := io.CopyN(h, r, 1<<20)
	if err != nil {
		return n, nil, err
	}
	time.Sleep(pause)
	m, err := io.Copy(h, r)
	return n + m, h.Sum(nil), err
}

// checkPaused reads pausedSize bytes of the pattern from r with a pause
// (readPaused), then checks the writer's error, the count and the checksum.
func checkPaused(t *testing.T, r io.Reader, pause time.Duration, written <-chan error) {
	t.Helper()
	n, sum, err := readPaused(r, pause)
	require.NoError(t, err, "reader after %d bytes", n)
	require.NoError(t, <-written, "writer")
	assert.Equal(t, int64(pausedSize), n, "bytes received")
	assert.Equal(t, patternSum(pausedSize), sum, "checksum")
}

func TestGuardedZeroWindow(t *testing.T) {
	t.Parallel()
	c := kit(t)
	pause := 3 * budget

	for _, side := range []struct {
		name   string
		listen func(context.Context, string, string) (net.Listener, error)
		dial   func(string, string) (net.Conn, error)
		dialed bool // the writer is the dialed end
	}{
		{"dialed writer", c.Listen, guardedDial(c), true},
		{"accepted writer", guardedListen(c), c.Dialer().Dial, false},
	} {
		t.Run("raw TCP, "+side.name+": reader pauses three budgets", func(t *testing.T) {
			t.Parallel()
			writer, reader := tcpPair(t, newLab(t), side.listen, side.dial)
			if !side.dialed {
				writer, reader = reader, writer
			}
			require.IsType(t, &tuning.GuardedConn{}, writer)
			checkPaused(t, reader, pause, sendPattern(writer, pausedSize, 0))
		})
	}

	t.Run("HTTP/1.1 response: client pauses three budgets", func(t *testing.T) {
		t.Parallel()
		handlerErr := make(chan error, 1)
		srv, url := httpServer(t, newLab(t), guardedListen(c), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := io.Copy(w, io.LimitReader(testsvc.Pattern(), pausedSize))
			handlerErr <- err
		}), false, nil)
		client := clientFor(srv, httptransport.New(c), false)
		resp, err := client.Get(url + "/large")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 1, resp.ProtoMajor)
		checkPaused(t, resp.Body, pause, handlerErr)
	})

	t.Run("HTTP/1.1 request body: server pauses three budgets", func(t *testing.T) {
		t.Parallel()
		tr := httptransport.New(c)
		tr.DialContext = c.GuardDialContext(nil)
		uploadPaused(t, newLab(t), c.Listen, tr, pause)
	})

	t.Run("reader vanishes while paused: found within GuardBound", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		client, _ := tcpPair(t, l, c.Listen, guardedDial(c))
		sent := sendPattern(client, pausedSize, 0)
		time.Sleep(budget) // the window is shut, the guard has raised the user timeout
		info, err := lab.TCPInfo(rawConn(t, client))
		require.NoError(t, err)
		require.Zero(t, info.Unacked, "window shut: nothing in flight")
		require.NotZero(t, info.Notsent_bytes, "window shut: data queued")
		require.NoError(t, l.Vanish(lab.Server))
		vanished := time.Now()
		end, err := waitErr(t, sent, c.GuardBound()+3*budget)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "guarded writer, reader vanished with its window shut", end.Sub(vanished), guardedWindow(c))
	})
}

// uploadPaused posts pausedSize bytes of the pattern through tr to a
// server, on a listener made with listen, that reads the body with a
// pause (readPaused), and checks what the server received.
func uploadPaused(t *testing.T, l *lab.Lab, listen func(context.Context, string, string) (net.Listener, error), tr *http.Transport, pause time.Duration) {
	t.Helper()
	srv, url := httpServer(t, l, listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, sum, err := readPaused(r.Body, pause)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d bytes, SHA-256 %x", n, sum)
	}), false, nil)
	resp, err := clientFor(srv, tr, false).Post(url+"/upload", "application/octet-stream", io.LimitReader(testsvc.Pattern(), pausedSize))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "server: %s", body)
	assert.Equal(t, fmt.Sprintf("%d bytes, SHA-256 %x", pausedSize, patternSum(pausedSize)), string(body),
		"what the server received")
}

// A guarded connection whose requests are answered as they come is not
// ticked (its send hold's calm samples move the guard's next tick ahead):
// a peer that vanishes after such a conversation is still found within
// GuardBound, with a request in flight or with its window shut.
func TestGuardAfterAnsweredRequests(t *testing.T) {
	t.Parallel()
	c := kit(t)
	_, busy := windows(c)
	converse := func(t *testing.T, client net.Conn) {
		t.Helper()
		b := make([]byte, 64)
		for range 40 { // two seconds, past the guard's linger
			time.Sleep(50 * time.Millisecond)
			_, err := client.Write(b)
			require.NoError(t, err)
			_, err = io.ReadFull(client, b)
			require.NoError(t, err)
		}
	}
	t.Run("server vanishes, a request in flight", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		client, server := tcpPair(t, l, (&net.ListenConfig{}).Listen, defaultDial(c))
		go testsvc.Answer(server, server, 64)
		converse(t, client)
		require.NoError(t, l.Vanish(lab.Server))
		vanished := time.Now()
		errc := make(chan error, 1)
		go func() {
			b := make([]byte, 64)
			_, err := client.Write(b)
			if err == nil {
				_, err = io.ReadFull(client, b)
			}
			errc <- err
		}()
		end, err := waitErr(t, errc, c.GuardBound()+3*budget)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "guarded client, server vanished with a request in flight", end.Sub(vanished), window{busy.earliest, c.GuardBound()})
	})
	t.Run("client stops reading, then vanishes", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		client, server := tcpPair(t, l, c.Listen, defaultDial(c))
		done := make(chan struct{})
		go func() { // answers, then a stream the client never reads
			defer close(done)
			testsvc.Answer(io.LimitReader(server, 40*64), server, 64)
		}()
		converse(t, client)
		<-done
		sent := sendPattern(server, pausedSize, 0)
		time.Sleep(2 * budget) // the window shuts; the guard holds the user timeout at 0
		require.NoError(t, l.Vanish(lab.Client))
		vanished := time.Now()
		end, err := waitErr(t, sent, c.GuardBound()+3*budget)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "guarded server, client vanished with its window shut", end.Sub(vanished), guardedWindow(c))
	})
}

// A Go proxy's io.Copy from a socket into a guarded Conn ((*Conn).ReadFrom,
// splice, which waits for its source outside the guard): its reader may
// pause for three budgets, and a reader that vanishes while the copy was
// idle is found within GuardBound once data comes.
func TestGuardedProxyCopy(t *testing.T) {
	t.Parallel()
	c := kit(t)
	t.Run("reader pauses three budgets", func(t *testing.T) {
		t.Parallel()
		client, server := tcpPair(t, newLab(t), c.Listen, c.Dialer().Dial)
		require.IsType(t, &tuning.Conn{}, server)
		upstream, copied := proxied(t, server)
		fed := sendPattern(upstream, pausedSize, 0)
		checkPaused(t, client, 3*budget, copied)
		require.NoError(t, <-fed, "upstream")
	})
	t.Run("copy idle, reader vanishes, data comes: found within GuardBound", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		_, server := tcpPair(t, l, c.Listen, c.Dialer().Dial)
		upstream, copied := proxied(t, server)
		time.Sleep(2 * budget) // the copy waits for its source
		require.NoError(t, l.Vanish(lab.Client))
		vanished := time.Now()
		_, err := upstream.Write(make([]byte, 1<<20))
		require.NoError(t, err)
		_, busy := windows(c)
		end, err := waitErr(t, copied, c.GuardBound()+3*budget)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "guarded proxy copy, reader vanished", end.Sub(vanished), window{busy.earliest, c.GuardBound()})
	})
}

// proxied copies into dst with io.Copy, as a Go proxy does ((*Conn).ReadFrom,
// splice), from a socket over this process's loopback, and half-closes dst
// at that socket's end. It returns the socket's far end, for the test to
// write, and the copy's error.
func proxied(t *testing.T, dst net.Conn) (upstream net.Conn, copied <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	upstream, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	src, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { upstream.Close(); src.Close() })
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(dst, src)
		if err == nil {
			err = dst.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	return upstream, errc
}
