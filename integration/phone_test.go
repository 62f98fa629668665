//go:build linux

package integration

import (
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// TestPhonePaths is ForBudgetOnPath on the paths phones use: a round trip
// of 50, 200 and 600 ms with a tenth of it as jitter, budgets of 10 s and
// 30 s, the server vanishing while the client reads (idle) and while it
// streams 1 KiB every 20 ms through the kit's default dialer (busy). Each
// detection must lie within the Config's own bounds, which are within the
// budget: the bounds count the tail-loss probe and the first RTO on the
// path's RTO (PathRTO), and the user timeout is cut to fit. A path too
// slow for the budget (600 ms at 10 s) must be refused.
func TestPhonePaths(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{10 * time.Second, 30 * time.Second} {
		for _, rtt := range []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, 600 * time.Millisecond} {
			path := lab.Phone(rtt)
			c, err := tuning.ForBudgetOnPath(d, path.LongestRTT())
			if err != nil {
				// Too slow a path for the budget: refused, with the
				// smallest budget that fits it, never a bound it misses.
				t.Logf("%v budget, %v round trip (up to %v): %v", d, rtt, path.LongestRTT(), err)
				assert.ErrorIs(t, err, tuning.ErrBudget)
				assert.Greater(t, path.LongestRTT(), 500*time.Millisecond, "only the slowest path is refused")
				continue
			}
			idle, busy := windows(c)
			require.LessOrEqual(t, max(idle.bound, c.GuardBound()), d, "ForBudgetOnPath(%v, %v)'s bounds fit the budget", d, rtt)
			for _, streaming := range []bool{false, true} {
				kind, w := "idle", idle
				if streaming {
					kind, w = "busy", window{busy.earliest, c.GuardBound()}
				}
				t.Run(fmt.Sprintf("%v budget, %v round trip, %s", d, rtt, kind), func(t *testing.T) {
					t.Parallel()
					l := newPathLab(t, path)
					client, server := tcpPair(t, l, (&net.ListenConfig{}).Listen, defaultDial(c))
					go io.Copy(io.Discard, server)
					var errc <-chan error
					if streaming {
						errc = writeLoop(client, 1<<10, 20*time.Millisecond)
						time.Sleep(time.Second) // in full flow, its RTO from the path's samples
					} else {
						errc = readErr(client) // idle from the handshake on
					}
					info, err := lab.TCPInfo(rawConn(t, client))
					require.NoError(t, err)
					require.NoError(t, l.Vanish(lab.Server))
					start := time.Now()
					end, err := waitErr(t, errc, 2*d)
					t.Logf("UserTimeout %v, PathRTO %v; the connection's RTT %v, RTO %v",
						c.UserTimeout, c.PathRTO, time.Duration(info.Rtt)*time.Microsecond, time.Duration(info.Rto)*time.Microsecond)
					assert.ErrorIs(t, err, syscall.ETIMEDOUT, "the kernel's verdict")
					expectWithin(t, kind+" on a phone path", end.Sub(start), w)
				})
			}
		}
	}
}

// TestSlowPathEvent: a connection whose RTO is past what its Config's
// bounds allow for is reported to the Observer once, at a write (whose
// sample shows the handshake's RTO), and Inspect says so; a Config made for
// the path reports nothing.
func TestSlowPathEvent(t *testing.T) {
	t.Parallel()
	path := lab.Phone(200 * time.Millisecond)
	lan, err := tuning.ForBudget(10 * time.Second)
	require.NoError(t, err)
	// The RTT stated with a clear margin over the link's own, as a user
	// states a phone's: the handshake's RTO is three of them, and this
	// process, which carries the link, may run late on a busy machine.
	phone, err := tuning.ForBudgetOnPath(10*time.Second, path.LongestRTT()+100*time.Millisecond)
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		cfg  tuning.Config
		slow bool
	}{{"ForBudget (a LAN)", lan, true}, {"ForBudgetOnPath", phone, false}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var events []tuning.Event
			cfg := c.cfg
			cfg.Observer = tuning.NewObserver(func(e tuning.Event) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, e)
			})
			l := newPathLab(t, path)
			conn := echoPair(t, l, defaultDial(cfg))
			for range 10 {
				require.NoError(t, roundTrip(conn, make([]byte, 4<<10), 5*time.Second))
			}
			snap, err := tuning.Inspect(conn)
			require.NoError(t, err)
			require.NoError(t, conn.Close())
			mu.Lock()
			defer mu.Unlock()
			var kinds []tuning.EventKind
			var rto time.Duration
			for _, e := range events {
				kinds = append(kinds, e.Kind)
				if e.Kind == tuning.EventSlowPath {
					rto = e.RTO
				}
			}
			t.Logf("events %v (slow path at RTO %v); the connection's RTO at the end %v (base %v), the Config's PathRTO %v; EndsIn %v", kinds, rto, snap.RTO, snap.BaseRTO(), cfg.PathRTO, snap.EndsIn())
			assert.Equal(t, c.slow, snap.SlowPath(), "Inspect's SlowPath")
			if !c.slow {
				assert.Equal(t, []tuning.EventKind{tuning.EventOpened, tuning.EventEnded}, kinds)
				return
			}
			assert.Equal(t, []tuning.EventKind{tuning.EventOpened, tuning.EventSlowPath, tuning.EventEnded}, kinds, "one slow-path event, between the opening and the end")
			assert.Greater(t, rto, tuning.LANRTOMax, "with the RTO that is past the LAN's")
		})
	}
}
