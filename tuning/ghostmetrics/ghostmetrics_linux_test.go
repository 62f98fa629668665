package ghostmetrics_test

import (
	"context"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"

	"github.com/ghostsock/ghostsock/internal/metricstest"
	"github.com/ghostsock/ghostsock/tuning"
	"github.com/ghostsock/ghostsock/tuning/ghostmetrics"
)

// loopback is ForBudget(3s) on loopback, counted into a fresh SDK meter.
func loopback(t testing.TB, noGuard bool) (tuning.Config, *metricstest.Meter) {
	m := metricstest.New()
	obs, err := ghostmetrics.New(ghostmetrics.WithMeterProvider(m.Provider))
	require.NoError(t, err)
	c, err := tuning.ForBudget(3 * time.Second)
	require.NoError(t, err)
	c.NoGuard = noGuard
	c.Observer = obs
	return c, m
}

// pairs opens n connections from c.DialFunc to c.Listen on 127.0.0.1.
func pairs(t testing.TB, c tuning.Config, n int) (clients, servers []net.Conn) {
	ln, err := c.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	dial := c.DialFunc(nil)
	for range n {
		cl, err := dial(context.Background(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		sv, err := ln.Accept()
		require.NoError(t, err)
		clients, servers = append(clients, cl), append(servers, sv)
	}
	return clients, servers
}

func TestCounts(t *testing.T) {
	for _, noGuard := range []bool{false, true} {
		t.Run(map[bool]string{false: "guarded", true: "unguarded"}[noGuard], func(t *testing.T) {
			c, m := loopback(t, noGuard)
			const n, resets = 10, 4
			clients, servers := pairs(t, c, n)

			r, err := m.Read()
			require.NoError(t, err)
			for _, side := range []string{"dialed", "accepted"} {
				assert.EqualValues(t, n, r.Sum(ghostmetrics.HardenedName, "ghostsock.connection.side="+side, "network.type=ipv4"))
				assert.EqualValues(t, n, r.Sum(ghostmetrics.CountName, "ghostsock.connection.side="+side))
			}

			// The first clients reset their connections; the servers see
			// ECONNRESET in Read. The others close in order.
			var wg sync.WaitGroup
			for i := range n {
				if i < resets {
					require.NoError(t, clients[i].(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn).SetLinger(0))
				}
				require.NoError(t, clients[i].Close())
				wg.Go(func() {
					_, err := io.Copy(io.Discard, servers[i])
					if i < resets {
						assert.ErrorIs(t, err, syscall.ECONNRESET)
					}
					servers[i].Close()
				})
			}
			wg.Wait()

			r, err = m.Read()
			require.NoError(t, err)
			assert.EqualValues(t, n, r.Sum(ghostmetrics.EndedName, "ghostsock.connection.side=dialed", "ghostsock.connection.end_cause=closed"))
			assert.EqualValues(t, resets, r.Sum(ghostmetrics.EndedName, "ghostsock.connection.side=accepted", "ghostsock.connection.end_cause=reset"))
			assert.EqualValues(t, n-resets, r.Sum(ghostmetrics.EndedName, "ghostsock.connection.side=accepted", "ghostsock.connection.end_cause=closed"))
			assert.EqualValues(t, 0, r.Sum(ghostmetrics.CountName), "every connection that opened has ended")
			count, _, _ := r.Observations(ghostmetrics.SilenceName, "ghostsock.connection.end_cause=reset")
			assert.EqualValues(t, resets, count, "a silence for each end by an error")
			count, _, _ = r.Observations(ghostmetrics.SilenceName, "ghostsock.connection.end_cause=closed")
			assert.Zero(t, count, "no silence for a Close")
		})
	}
}

// A live reader cut by the kernel's zero-window rule (unguarded, UT 2 s)
// counts as window_stall, not as a reap.
func TestLiveCutIsNoReap(t *testing.T) {
	c, m := loopback(t, true)
	clients, servers := pairs(t, c, 1)
	defer clients[0].Close()
	rc, err := clients[0].(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) }))
	buf := make([]byte, 1<<20)
	var werr error
	for range 1024 { // at most 1 GiB: the kernel cuts it long before
		if _, werr = servers[0].Write(buf); werr != nil {
			break
		}
	}
	require.ErrorIs(t, werr, syscall.ETIMEDOUT)
	servers[0].Close()
	r, err := m.Read()
	require.NoError(t, err)
	assert.EqualValues(t, 1, r.Sum(ghostmetrics.EndedName, "ghostsock.connection.side=accepted", "ghostsock.connection.end_cause=window_stall"))
	assert.EqualValues(t, 0, r.Sum(ghostmetrics.EndedName, "ghostsock.connection.end_cause=reaped_busy"))
	assert.EqualValues(t, 0, r.Sum(ghostmetrics.EndedName, "ghostsock.connection.end_cause=reaped_idle"))
}

// Without WithMeterProvider, New takes the global provider; events with
// a side or a cause it does not know are recorded as other or dropped,
// never a panic on the table lookups.
func TestGlobalProviderAndUnknownValues(t *testing.T) {
	m := metricstest.New()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(m.Provider)
	t.Cleanup(func() { otel.SetMeterProvider(prev) })
	obs, err := ghostmetrics.New()
	require.NoError(t, err)
	assert.NotPanics(t, func() {
		obs.Observe(tuning.Event{Kind: tuning.EventOpened, Side: tuning.SideDialed})
		obs.Observe(tuning.Event{Kind: tuning.EventEnded, Side: tuning.SideDialed, Cause: tuning.Cause(200)})
		obs.Observe(tuning.Event{Kind: tuning.EventOpened, Side: tuning.Side(9)})
		obs.Observe(tuning.Event{Kind: tuning.EventSlowPath, Side: tuning.SideAccepted, RTO: time.Second})
	})
	r, err := m.Read()
	require.NoError(t, err)
	assert.EqualValues(t, 1, r.Sum(ghostmetrics.HardenedName), "recorded through the global provider; the unknown side dropped")
	assert.EqualValues(t, 1, r.Sum(ghostmetrics.EndedName, "ghostsock.connection.end_cause=other"))
	assert.EqualValues(t, 1, r.Sum(ghostmetrics.SlowPathName, "ghostsock.connection.side=accepted"), "a slow path counted")
}
