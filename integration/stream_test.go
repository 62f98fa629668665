//go:build linux

package integration

import (
	"errors"
	"fmt"
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

// TestStreamingWriter is the writer that used to outlive its budget: a
// burst that grows the congestion window and the send buffer, then small
// writes a few milliseconds apart, each of which re-armed the kernel's
// tail-loss probe over its pending RTO and so postponed the first RTO
// retransmission, where the user timeout's clock starts (a 3 s budget was
// found after up to 5.3 s). A Conn's send hold stops feeding the socket
// once the peer is silent for an RTO, so the kernel's RTO fires on time:
// every cell must end with the kernel's ETIMEDOUT within the bound, guarded
// or not. The bare *net.TCPConn of c.Dialer() has no hold; its figure is
// logged beside them, as the doc's unbounded case. It runs before the
// parallel tests, its cells beside each other only: its writers are held to
// the busy bound (see the package doc).
func TestStreamingWriter(t *testing.T) {
	c := kit(t)
	_, busy := windows(c)
	guardBound := window{busy.earliest, c.GuardBound()}
	noGuard := c
	noGuard.NoGuard = true
	type cell struct {
		name   string
		dial   func(string, string) (net.Conn, error)
		w      window
		burst  int
		period time.Duration
		stream func(net.Conn, time.Duration) <-chan error // writeLoop of 1 KiB if nil
	}
	var cells []cell
	// With an OutageGrace the writer goes on for half a second longer, and
	// WithOutageGrace cuts the user timeout to keep the busy bound.
	grace, err := noGuard.WithOutageGrace(500 * time.Millisecond)
	require.NoError(t, err)
	_, graceBusy := windows(grace)
	for _, period := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 8 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
		cells = append(cells,
			cell{"guarded", defaultDial(c), guardBound, 1 << 20, period, nil},
			cell{"unguarded Conn", defaultDial(noGuard), busy, 1 << 20, period, nil},
			cell{"unguarded Conn, OutageGrace 500ms", defaultDial(grace), graceBusy, 1 << 20, period, nil})
	}
	cells = append(cells,
		cell{"guarded", defaultDial(c), guardBound, 4 << 20, 5 * time.Millisecond, nil},
		cell{"unguarded Conn", defaultDial(noGuard), busy, 4 << 20, 10 * time.Millisecond, nil},
		// io.Copy from a reader in user space (a response body, a
		// decompressor): ReadFrom copies it through Write.
		cell{"guarded, io.Copy of a trickling reader", defaultDial(c), guardBound, 1 << 20, 5 * time.Millisecond, trickleCopy},
		// A second goroutine writing while the first is held waits too.
		cell{"unguarded Conn, two writers", defaultDial(noGuard), busy, 1 << 20, 5 * time.Millisecond, twoWriters})
	for _, k := range cells {
		t.Run(fmt.Sprintf("%s, %d KiB burst, 1 KiB every %v", k.name, k.burst>>10, k.period), func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			client, server := tcpPair(t, l, (&net.ListenConfig{}).Listen, k.dial)
			go io.Copy(io.Discard, server)
			end, held := streamUntilVanished(t, l, client, k.burst, k.period, k.stream, 3*k.w.bound)
			expectWithin(t, k.name+" streaming writer", end, k.w)
			t.Logf("writes held: %d", held)
		})
	}
	t.Run("control: bare TCPConn from Dialer, 1024 KiB burst, 1 KiB every 5ms", func(t *testing.T) {
		l := newLab(t)
		client, server := tcpPair(t, l, (&net.ListenConfig{}).Listen, c.Dialer().Dial)
		go io.Copy(io.Discard, server)
		end, _ := streamUntilVanished(t, l, client, 1<<20, 5*time.Millisecond, nil, 5*busy.bound)
		t.Logf("no hold: detected after %v, %.2f of the busy bound %v (the doc's unbounded case)",
			end.Round(time.Millisecond), float64(end)/float64(busy.bound), busy.bound)
	})
}

// streamUntilVanished writes burst bytes in 64 KiB writes, then 1 KiB
// with period between writes; once the burst is acknowledged the server's host vanishes
// (its blackhole, so that the writer meets no local route error). It
// returns the time from the vanishing to the writer's error, which must be
// the kernel's ETIMEDOUT, and how many writes the hold made wait.
func streamUntilVanished(t *testing.T, l *lab.Lab, conn net.Conn, burst int, period time.Duration,
	stream func(net.Conn, time.Duration) <-chan error, limit time.Duration) (time.Duration, int64) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for sent := 0; sent < burst; sent += len(buf) {
		_, err := conn.Write(buf)
		require.NoError(t, err)
	}
	if stream == nil {
		stream = func(c net.Conn, period time.Duration) <-chan error { return writeLoop(c, 1<<10, period) }
	}
	errc := stream(conn, period)
	time.Sleep(200 * time.Millisecond) // streaming, the burst's window grown
	require.NoError(t, l.Vanish(lab.Server))
	start := time.Now()
	end, err := waitErr(t, errc, limit)
	assert.ErrorIs(t, err, syscall.ETIMEDOUT, "the kernel's verdict, not the hold's")
	var held int64
	if kc, ok := conn.(*tuning.Conn); ok {
		held = kc.HeldWrites()
	}
	return end.Sub(start), held
}

// trickleCopy copies into c, with io.Copy, a reader that gives 1 KiB each
// period, for ever.
func trickleCopy(c net.Conn, period time.Duration) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, trickle{period})
		errc <- err
	}()
	return errc
}

type trickle struct{ period time.Duration }

func (r trickle) Read(b []byte) (int, error) {
	time.Sleep(r.period)
	n := min(len(b), 1<<10)
	clear(b[:n])
	return n, nil
}

// twoWriters writes 1 KiB each period from two goroutines, and reports
// both errors, once both have ended at the same verdict.
func twoWriters(c net.Conn, period time.Duration) <-chan error {
	errc := make(chan error, 1)
	first, second := writeLoop(c, 1<<10, period), writeLoop(c, 1<<10, period)
	go func() {
		// The kernel's ETIMEDOUT goes to whichever write meets it first;
		// the other then finds the socket shut (EPIPE), a period later
		// at most. Both are reported.
		var err, other error
		select {
		case err = <-first:
			other = <-second
		case err = <-second:
			other = <-first
		}
		errc <- errors.Join(err, other)
	}()
	return errc
}
