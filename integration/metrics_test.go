//go:build linux

package integration

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/internal/metricstest"
	"github.com/ghostsock/ghostsock/tuning"
	"github.com/ghostsock/ghostsock/tuning/ghostmetrics"
)

// counted is kit(t) counting into a meter of its own: each end of a pair
// gets one, so that the end which vanished (whose own kernel gives up on
// its sockets too) never shows in the observer's counts.
func counted(t *testing.T) (tuning.Config, *metricstest.Meter) {
	t.Helper()
	m := metricstest.New()
	obs, err := ghostmetrics.New(ghostmetrics.WithMeterProvider(m.Provider))
	require.NoError(t, err)
	c := kit(t)
	c.Observer = obs
	return c, m
}

// waitEnded polls m until a connection on side has ended, for at most
// limit, and returns when it saw the end and the reading then.
func waitEnded(t *testing.T, m *metricstest.Meter, side string, limit time.Duration) (time.Time, metricstest.Reading) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r, err := m.Read()
		require.NoError(t, err)
		if r.Sum(ghostmetrics.EndedName, "ghostsock.connection.side="+side) > 0 {
			return time.Now(), r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s connection ended within %v: %v", side, limit, r.Sums)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expectOneEnd checks that the reading shows exactly one connection on
// side, hardened, ended once, by cause, with the peer's silence at the end
// inside the window's bound.
func expectOneEnd(t *testing.T, r metricstest.Reading, side string, cause tuning.Cause, w window) {
	t.Helper()
	s := "ghostsock.connection.side=" + side
	assert.EqualValues(t, 1, r.Sum(ghostmetrics.HardenedName, s), "hardened")
	assert.EqualValues(t, 1, r.Sum(ghostmetrics.EndedName, s), "ended, any cause: %v", r.Sums)
	assert.EqualValues(t, 1, r.Sum(ghostmetrics.EndedName, s, "ghostsock.connection.end_cause="+cause.String()), "ended by %v: %v", cause, r.Sums)
	assert.EqualValues(t, 0, r.Sum(ghostmetrics.CountName, s), "still counted open")
	n, _, silence := r.Observations(ghostmetrics.SilenceName, s)
	assert.EqualValues(t, 1, n, "one silence recorded")
	// The silence is read when this process sees the end: it may be late
	// by as much as the process was (see schedLag).
	lag := schedLag.worstSince(time.Now().Add(-time.Duration(silence * float64(time.Second))))
	assert.LessOrEqual(t, silence, (w.bound + lab.Late + lag).Seconds(), "silence at the end past the bound (this process ran up to %v late)", lag)
}

// TestCountedPerStack: for each stack and side, a vanished peer is reaped
// and the observing end's counters show exactly one reap, of the cause the
// kernel's state makes it (busy: its data went unacknowledged; idle:
// keepalive found it), and nothing else. It runs before the parallel
// tests, its cells beside each other only: its writers are held to the
// busy bound (see the package doc).
func TestCountedPerStack(t *testing.T) {
	idleW, busyW := windows(kit(t))
	guardW := window{busyW.earliest, kit(t).GuardBound()}
	type setup func(t *testing.T, l *lab.Lab, server, client tuning.Config) (vanish lab.Host, then func() (time.Time, error))
	for _, tc := range []struct {
		name  string
		side  string
		cause tuning.Cause
		w     window
		setup setup
	}{
		{"raw TCP, server writing, client vanishes", "accepted", tuning.CauseReapedBusy, busyW,
			func(t *testing.T, l *lab.Lab, s, c tuning.Config) (lab.Host, func() (time.Time, error)) {
				_, server := tcpPair(t, l, s.Listen, defaultDial(c))
				errc := writeErr(server)
				return lab.Client, func() (time.Time, error) { return waitErr(t, errc, 3*busyW.bound) }
			}},
		{"raw TCP, client reading an idle connection, server vanishes", "dialed", tuning.CauseReapedIdle, idleW,
			func(t *testing.T, l *lab.Lab, s, c tuning.Config) (lab.Host, func() (time.Time, error)) {
				client, _ := tcpPair(t, l, s.Listen, defaultDial(c))
				errc := readErr(client)
				return lab.Server, func() (time.Time, error) { return waitErr(t, errc, 3*idleW.bound) }
			}},
		{"gRPC server, idle after an RPC, client vanishes", "accepted", tuning.CauseReapedIdle, idleW,
			func(t *testing.T, l *lab.Lab, s, c tuning.Config) (lab.Host, func() (time.Time, error)) {
				grpcPair(t, l, s, c)
				time.Sleep(300 * time.Millisecond) // every frame acknowledged: idle
				return lab.Client, nil
			}},
		{"gRPC client, RPC after the server vanished", "dialed", tuning.CauseReapedBusy, busyW,
			func(t *testing.T, l *lab.Lab, s, c tuning.Config) (lab.Host, func() (time.Time, error)) {
				client := grpcPair(t, l, s, c)
				return lab.Server, func() (time.Time, error) {
					errc := make(chan error, 1)
					go func() { errc <- unary(t.Context(), client) }()
					end, err := waitErr(t, errc, 3*busyW.bound)
					assert.Equal(t, codes.Unavailable, status.Code(err))
					return end, err
				}
			}},
		// A guarded writer whose client stopped reading: its window may
		// have shut before the client vanished (a race), when GuardBound
		// is the bound (see TestHTTPServer, which tells the two apart).
		{"HTTP/1.1 server writing a response, client vanishes", "accepted", tuning.CauseReapedBusy, either(busyW, guardW),
			func(t *testing.T, l *lab.Lab, s, c tuning.Config) (lab.Host, func() (time.Time, error)) {
				client, url := httpPair(t, l, s, c, false)
				bodyErr(t, client, url, 1)
				return lab.Client, nil
			}},
		{"HTTP/1.1 client, pooled idle connection, server vanishes", "dialed", tuning.CauseReapedIdle, idleW,
			func(t *testing.T, l *lab.Lab, s, c tuning.Config) (lab.Host, func() (time.Time, error)) {
				client, url := httpPair(t, l, s, c, false)
				getSmall(t, client, url, 1)
				return lab.Server, nil
			}},
		{"HTTP/2 server writing a response, client vanishes", "accepted", tuning.CauseReapedBusy, busyW,
			func(t *testing.T, l *lab.Lab, s, c tuning.Config) (lab.Host, func() (time.Time, error)) {
				client, url := httpPair(t, l, s, c, true)
				bodyErr(t, client, url, 2)
				return lab.Client, nil
			}},
		{"HTTP/2 client, request after the server vanished", "dialed", tuning.CauseReapedBusy, busyW,
			func(t *testing.T, l *lab.Lab, s, c tuning.Config) (lab.Host, func() (time.Time, error)) {
				client, url := httpPair(t, l, s, c, true)
				getSmall(t, client, url, 2)
				return lab.Server, func() (time.Time, error) {
					errc := make(chan error, 1)
					go func() {
						resp, err := client.Get(url + "/small")
						if err == nil {
							resp.Body.Close()
						}
						errc <- err
					}()
					return waitErr(t, errc, 3*busyW.bound)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			server, sm := counted(t)
			client, cm := counted(t)
			vanish, then := tc.setup(t, l, server, client)
			m := map[string]*metricstest.Meter{"accepted": sm, "dialed": cm}[tc.side]
			require.NoError(t, l.Vanish(vanish))
			start := time.Now()
			if then != nil {
				// Where the application sees the end, its error says why,
				// through net/http's and grpc-go's wrapping. (A request sent
				// after the vanishing starts the busy clock now.)
				_, err := then()
				require.Error(t, err)
				assert.Equal(t, tuning.CauseSilentPeer, tuning.Classify(err), "Classify(%v)", err)
			}
			ended, r := waitEnded(t, m, tc.side, 3*tc.w.bound)
			expectWithin(t, tc.name, ended.Sub(start), tc.w)
			expectOneEnd(t, r, tc.side, tc.cause, tc.w)
		})
	}
}

// grpcPair serves testsvc with server's Config and returns a client with
// client's, after one RPC.
func grpcPair(t *testing.T, l *lab.Lab, server, client tuning.Config) testpb.TestServiceClient {
	t.Helper()
	ln, _ := grpcServer(t, l, func(ctx context.Context, network, addr string) (net.Listener, error) {
		return grpcserver.Listen(ctx, network, addr, server)
	}, grpcserver.Options(server)...)
	cl := grpcClient(t, ln.Addr().String(), grpcdial.Options(client)...)
	require.NoError(t, unary(t.Context(), cl))
	return cl
}

// httpPair serves endless on server's Listen (HTTP/2 over TLS with useTLS)
// and returns a client on httptransport.New(client).
func httpPair(t *testing.T, l *lab.Lab, server, client tuning.Config, useTLS bool) (*http.Client, string) {
	t.Helper()
	srv, url := httpServer(t, l, server.Listen, endless(nil), useTLS, nil)
	return clientFor(srv, httptransport.New(client), useTLS), url
}
