//go:build linux

package integration

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// newPathLab is newLab with a Path's link between the hosts.
func newPathLab(t *testing.T, p lab.Path) *lab.Lab {
	t.Helper()
	if labErr != nil {
		t.Skipf("integration lab unavailable: %v", labErr)
	}
	l, err := lab.NewPath(p)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// echoPair connects, with dial, to a server on l's server host that
// writes back everything it reads.
func echoPair(t *testing.T, l *lab.Lab, dial func(network, addr string) (net.Conn, error)) net.Conn {
	t.Helper()
	client, server := tcpPair(t, l, (&net.ListenConfig{}).Listen, dial)
	go io.Copy(server, server)
	return client
}

// roundTrip writes msg to c and reads it back, within limit.
func roundTrip(c net.Conn, msg []byte, limit time.Duration) error {
	c.SetDeadline(time.Now().Add(limit))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs")
	}
	return nil
}

// TestPathShape checks that the Path link does what its Shape says, as the
// kernel of each host sees it: the round trip in the connection's own
// TCP_INFO, random loss in the link's counts with every byte still
// delivered, and the rate limit in the transfer time.
func TestPathShape(t *testing.T) {
	t.Parallel()
	t.Run("phone path, 200 ms round trip", func(t *testing.T) {
		t.Parallel()
		p := lab.Phone(200 * time.Millisecond)
		l := newPathLab(t, p)
		c := echoPair(t, l, net.Dial)
		began := time.Now()
		for range 8 {
			require.NoError(t, roundTrip(c, []byte("ping"), 5*time.Second))
		}
		info, err := lab.TCPInfo(rawConn(t, c))
		require.NoError(t, err)
		srtt := time.Duration(info.Rtt) * time.Microsecond
		// Each way adds Delay and up to Jitter; the hosts' own stacks and
		// this process's scheduling add a little more.
		most := p.LongestRTT() + schedLag.worstSince(began)
		t.Logf("smoothed RTT %v (path %v, jitter up to %v each way), RTO %v", srtt, p.RTT(), p.Up.Jitter, time.Duration(info.Rto)*time.Microsecond)
		assert.GreaterOrEqual(t, srtt, p.RTT(), "the round trip is at least the path's")
		assert.LessOrEqual(t, srtt, most, "and no more than its delay, jitter and scheduling")
	})
	t.Run("5 % loss up", func(t *testing.T) {
		t.Parallel()
		const loss = 0.05
		l := newPathLab(t, lab.Path{Up: lab.Shape{Delay: 5 * time.Millisecond, Loss: loss}, Down: lab.Shape{Delay: 5 * time.Millisecond}})
		client, server := tcpPair(t, l, (&net.ListenConfig{}).Listen, net.Dial)
		const size = 2 << 20
		sent := sendPattern(client, size, 0)
		checkPattern(t, server, size)
		require.NoError(t, <-sent)
		s := l.PathStats()
		n := float64(s.Delivered[lab.Up] + s.Lost[lab.Up])
		// The count of losses is binomial: within four standard
		// deviations of n·loss but for one run in 15,000.
		sd := math.Sqrt(n * loss * (1 - loss))
		t.Logf("up: %d packets delivered, %d lost (%.2f %%, expected %.0f ± %.0f)", s.Delivered[lab.Up], s.Lost[lab.Up], 100*float64(s.Lost[lab.Up])/n, n*loss, 4*sd)
		assert.InDelta(t, n*loss, float64(s.Lost[lab.Up]), 4*sd, "losses")
		assert.Zero(t, s.Lost[lab.Down], "no loss down")
	})
	t.Run("1 MB/s down", func(t *testing.T) {
		t.Parallel()
		const rate = 1 << 20
		l := newPathLab(t, lab.Path{Up: lab.Shape{Delay: time.Millisecond}, Down: lab.Shape{Delay: time.Millisecond, Rate: rate}})
		client, server := tcpPair(t, l, (&net.ListenConfig{}).Listen, net.Dial)
		const size = 2 << 20
		start := time.Now()
		sent := sendPattern(server, size, 0)
		checkPattern(t, client, size)
		took := time.Since(start)
		require.NoError(t, <-sent)
		least := time.Duration(float64(size) / rate * float64(time.Second))
		t.Logf("%d MiB down in %v at a %d KiB/s line (its payload alone takes %v)", size>>20, took.Round(time.Millisecond), rate>>10, least)
		assert.GreaterOrEqual(t, took, least, "no faster than the line")
		assert.Less(t, took, 3*least, "and the line is used")
	})
}

// TestPathBlackhole drops one direction on the link, not on a host: a
// writer retransmits unanswered, and once the path is back the same
// connection carries on.
func TestPathBlackhole(t *testing.T) {
	t.Parallel()
	for _, dir := range []lab.Direction{lab.Up, lab.Down} {
		t.Run(dir.String(), func(t *testing.T) {
			t.Parallel()
			l := newPathLab(t, lab.Phone(50*time.Millisecond))
			c := echoPair(t, l, net.Dial)
			require.NoError(t, roundTrip(c, []byte("before"), 5*time.Second))
			require.NoError(t, l.Blackhole(dir, true))
			err := roundTrip(c, []byte("during"), time.Second)
			assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "nothing comes back through a blackhole")
			info, ierr := lab.TCPInfo(rawConn(t, c))
			require.NoError(t, ierr)
			assert.NotZero(t, info.Unacked, "the data is unacknowledged")
			require.NoError(t, l.Blackhole(dir, false))
			got := make([]byte, len("during"))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadFull(c, got)
			require.NoError(t, err, "the path is back: the retransmission gets through")
			assert.Equal(t, "during", string(got))
			assert.NotZero(t, l.PathStats().Blackholed[dir], "the link dropped packets going %v", dir)
		})
	}
}

// TestMiddleboxIdleLimit is a flow through a middlebox that forgets it
// after 4 s without a packet: ForBudget(30s)'s keepalive (Idle far longer)
// lets it forget the idle connection, whose next write is then dropped
// or answered with a reset; ForBudgetWithIdleLimit(30s, 4s) probes often
// enough that the middlebox keeps it, and the write after the idle is
// echoed.
func TestMiddleboxIdleLimit(t *testing.T) {
	t.Parallel()
	const limit = 4 * time.Second
	plain, err := tuning.ForBudget(30 * time.Second)
	require.NoError(t, err)
	limited, err := tuning.ForBudgetWithIdleLimit(30*time.Second, limit)
	require.NoError(t, err)
	require.Greater(t, plain.KeepAlive.Idle, limit+time.Second, "the premise: ForBudget alone idles past the limit")
	for _, reset := range []bool{false, true} {
		for _, c := range []struct {
			name  string
			cfg   tuning.Config
			alive bool
		}{{"ForBudget", plain, false}, {"ForBudgetWithIdleLimit", limited, true}} {
			kind := "drops"
			if reset {
				kind = "resets"
			}
			t.Run(c.name+", the middlebox "+kind, func(t *testing.T) {
				t.Parallel()
				l := newPathLab(t, lab.Path{
					Up: lab.Shape{Delay: 10 * time.Millisecond}, Down: lab.Shape{Delay: 10 * time.Millisecond},
					Middlebox: lab.Middlebox{IdleLimit: limit, Reset: reset},
				})
				conn := echoPair(t, l, defaultDial(c.cfg))
				require.NoError(t, roundTrip(conn, []byte("hello"), 5*time.Second))
				time.Sleep(limit + 2*time.Second) // idle past the limit
				err := roundTrip(conn, []byte("after"), 3*time.Second)
				s := l.PathStats()
				t.Logf("Idle %v: after the idle, %v; the middlebox dropped %d packets and reset %d",
					c.cfg.KeepAlive.Idle, err, s.Forgotten[lab.Up]+s.Forgotten[lab.Down], s.Resets[lab.Up]+s.Resets[lab.Down])
				if c.alive {
					require.NoError(t, err, "the probes kept the flow")
					assert.Zero(t, s.Forgotten[lab.Up]+s.Forgotten[lab.Down], "nothing forgotten")
					return
				}
				require.Error(t, err, "the middlebox forgot the flow")
				if reset {
					assert.ErrorIs(t, err, syscall.ECONNRESET, "its reset ends the connection")
				} else {
					assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "its silence leaves the write unanswered")
				}
				assert.NotZero(t, s.Forgotten[lab.Up], "the write met the forgotten flow")
			})
		}
	}
}
