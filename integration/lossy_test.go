//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// lossyPath loses 2 % of the packets each way, 5 ms each way: a lost
// zero-window probe or answer every 25 round trips.
var lossyPath = lab.Path{Up: lab.Shape{Delay: 5 * time.Millisecond, Loss: 0.02}, Down: lab.Shape{Delay: 5 * time.Millisecond, Loss: 0.02}}

// TestGuardKeepsPausedReadersOnLossyPath: at the smallest budget ForBudget
// takes (3 s: user timeout 2 s), writers through Listen (two of them a
// proxy's io.Copy from an upstream socket) and DialFunc fill
// the windows of readers that never read, over a path that loses 2 % of
// packets each way, for a minute: none is cut, although probes and their
// answers were lost (the verdict of one lost answer, the guard's before,
// would have cut them). HTTP uploads through httptransport.New to servers
// that stop reading their bodies are alive too: once the servers read,
// every one is answered.
func TestGuardKeepsPausedReadersOnLossyPath(t *testing.T) {
	t.Parallel()
	const each, pause = 8, time.Minute
	c, err := tuning.ForBudget(3 * time.Second)
	require.NoError(t, err)
	l := newPathLab(t, lossyPath)
	type writer struct {
		name    string
		conn    net.Conn
		written <-chan error
	}
	var writers []writer
	// look fails the test if w's writer has ended, and takes w's snapshot.
	look := func(w writer) tuning.Snapshot {
		select {
		case err := <-w.written:
			require.Failf(t, "a live paused reader's writer ended", "%s: %v (path: %+v)", w.name, err, l.PathStats())
		default:
		}
		s, err := tuning.Inspect(w.conn)
		require.NoError(t, err)
		return s
	}
	// The readers are stock sockets that never read: their own keepalive
	// (one probe at ForBudget(3s)) would cut them on this path, which the
	// writer's guard cannot help.
	for i := range each {
		_, server := tcpPair(t, l, c.Listen, (&net.Dialer{KeepAlive: -1}).Dial)
		if i < 2 { // a Go proxy's: io.Copy from an upstream socket (ReadFrom, splice)
			upstream, copied := proxied(t, server)
			sendPattern(upstream, pausedSize, 0)
			writers = append(writers, writer{"Listen, proxied copy", server, copied})
		} else {
			writers = append(writers, writer{"Listen", server, sendPattern(server, pausedSize, 0)})
		}
		client, _ := tcpPair(t, l, (&net.ListenConfig{KeepAlive: -1}).Listen, defaultDial(c))
		writers = append(writers, writer{"DialFunc", client, sendPattern(client, pausedSize, 0)})
	}
	// The uploads start once the writers' windows have shut: twenty fills at
	// once through the lab's user-space link, beside the other lab tests,
	// can stall it for longer than this budget tells from a dead peer.
	fill := time.Now().Add(time.Minute)
	for open := len(writers); open > 0; time.Sleep(100 * time.Millisecond) {
		open = 0
		for _, w := range writers {
			if !look(w).Shut() {
				open++
			}
		}
		require.True(t, time.Now().Before(fill), "%d of %d windows still open after a minute of writing: %+v", open, len(writers), l.PathStats())
	}
	uploads := pausedUploads(t, l, c, 4)
	// The old verdict: silence past 1.5 capped probe intervals with a
	// probe out. Counted from samples, to show the path reached it.
	oldVerdict, shut := 0, 0
	deadline := time.Now().Add(pause)
	for time.Now().Before(deadline) {
		for _, w := range writers {
			s := look(w)
			select {
			case err := <-uploads.done:
				require.Failf(t, "an HTTP upload to a live paused server ended", "%v (path: %+v)", err, l.PathStats())
			default:
			}
			if s.Shut() {
				shut++
				if s.Probes >= 1 && s.SinceACK > 1500*time.Millisecond {
					oldVerdict++
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, w := range writers {
		s, err := tuning.Inspect(w.conn)
		require.NoError(t, err)
		assert.Equal(t, tuning.TCPEstablished, s.State, "%s: alive after %v", w.name, pause)
		assert.True(t, s.Guarded, w.name)
	}
	uploads.finish(t)
	st := l.PathStats()
	t.Logf("%d writers x %v (%v of connection-time), and %d HTTP uploads through httptransport.New, to readers that never read, %d and %d packets lost up and down: none cut; %d samples found the window shut, %d of them past the old verdict (a probe out, nothing heard for 1.5 s)",
		len(writers), pause, time.Duration(len(writers))*pause, len(uploads.servers), st.Lost[lab.Up], st.Lost[lab.Down], shut, oldVerdict)
	assert.Positive(t, shut, "the windows shut")
	assert.Positive(t, oldVerdict, "the path lost probes or answers: the case one lost answer used to cut")
}

// uploads are HTTP requests with large bodies in flight to servers that
// have not read them.
type uploads struct {
	servers []net.Conn
	done    chan error // a RoundTrip's end: an error, or nil with 200
	size    int64
}

// pausedUploads starts n POSTs of 8 MiB through httptransport.New(c), each
// on a connection of its own, to a server on l that accepts and reads
// nothing.
func pausedUploads(t *testing.T, l *lab.Lab, c tuning.Config, n int) *uploads {
	t.Helper()
	const size = 8 << 20 // past any buffer of this path: the window shuts
	ln, err := l.Listen((&net.ListenConfig{KeepAlive: -1}).Listen, "tcp", l.ServerAddrPort(0))
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	u := &uploads{done: make(chan error, n), size: size}
	tr := httptransport.New(c)
	t.Cleanup(tr.CloseIdleConnections)
	for range n {
		go func() {
			req, err := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/", bytes.NewReader(make([]byte, size)))
			if err != nil {
				u.done <- err
				return
			}
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			u.done <- err
		}()
		s, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		u.servers = append(u.servers, s)
	}
	return u
}

// finish has each server read its request whole and answer it, and checks
// that every upload then ends with 200.
func (u *uploads) finish(t *testing.T) {
	t.Helper()
	for _, s := range u.servers {
		go func() {
			req, err := http.ReadRequest(bufio.NewReader(s))
			if err != nil {
				return // the client's RoundTrip reports it
			}
			n, _ := io.Copy(io.Discard, req.Body)
			if n == u.size {
				io.WriteString(s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			}
		}()
	}
	for range u.servers {
		select {
		case err := <-u.done:
			require.NoError(t, err, "an upload paused on a lossy path, then read")
		case <-time.After(2 * time.Minute):
			require.Fail(t, "an upload not answered within 2 minutes of its server reading")
		}
	}
}
