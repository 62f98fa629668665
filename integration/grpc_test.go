//go:build linux

package integration

import (
	"context"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ghostsock/ghostsock/tuning/ghostmetrics"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/integration/testsvc"
	"github.com/ghostsock/ghostsock/internal/sockfind"
	"github.com/ghostsock/ghostsock/tuning"
)

// grpcServer serves testsvc on the server host and returns its address and
// a watcher of its connections.
func grpcServer(t *testing.T, l *lab.Lab, listen func(context.Context, string, string) (net.Listener, error), opts ...grpc.ServerOption) (net.Listener, *testsvc.ConnWatcher) {
	t.Helper()
	ln, err := l.Listen(listen, "tcp", l.ServerAddrPort(0))
	require.NoError(t, err)
	w := testsvc.NewConnWatcher()
	srv := grpc.NewServer(append(opts, grpc.StatsHandler(w))...)
	testsvc.Register(srv)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln, w
}

// kitGRPCServer is grpcServer as the README sets one up with c:
// grpcserver.Listen and grpcserver.Options.
func kitGRPCServer(t *testing.T, l *lab.Lab, c tuning.Config) net.Listener {
	t.Helper()
	ln, _ := grpcServer(t, l, func(ctx context.Context, network, addr string) (net.Listener, error) {
		return grpcserver.Listen(ctx, network, addr, c)
	}, grpcserver.Options(c)...)
	return ln
}

func grpcClient(t *testing.T, addr string, opts ...grpc.DialOption) testpb.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

func unary(ctx context.Context, c testpb.TestServiceClient) error {
	_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 1})
	return err
}

// streamErr starts an endless server stream, reads from it until 1 MiB has
// arrived, and then returns a channel for the error that ends it.
func streamErr(t *testing.T, ctx context.Context, c testpb.TestServiceClient) <-chan error {
	t.Helper()
	errc, err := testsvc.Endless(ctx, c)
	require.NoError(t, err)
	return errc
}

func TestGRPCClient(t *testing.T) {
	t.Parallel()
	c := kit(t)
	idleBound, busyBound := windows(c)
	plainListen := (&net.ListenConfig{}).Listen
	ctx := t.Context()

	t.Run("unary RPC after idle, server vanishes", func(t *testing.T) {
		l := newLab(t)
		ln, _ := grpcServer(t, l, plainListen)
		client := grpcClient(t, ln.Addr().String(), grpcdial.Options(c)...)
		require.NoError(t, unary(ctx, client))
		require.NoError(t, l.Vanish(lab.Server))
		start := time.Now()
		err := unary(ctx, client) // wait-for-ready is off by default
		assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		expectWithin(t, "gRPC client unary after idle", time.Since(start), busyBound)
	})
	t.Run("server stream mid-stream, server vanishes", func(t *testing.T) {
		l := newLab(t)
		ln, _ := grpcServer(t, l, plainListen)
		client := grpcClient(t, ln.Addr().String(), grpcdial.Options(c)...)
		errc := streamErr(t, ctx, client)
		require.NoError(t, l.Vanish(lab.Server))
		start := time.Now()
		end, err := waitErr(t, errc, 3*idleBound.bound)
		assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		expectWithin(t, "gRPC client stream", end.Sub(start), either(idleBound, busyBound))
	})
	t.Run("RPC to a vanished address, wait-for-ready off", func(t *testing.T) {
		l := newLab(t)
		ln, _ := grpcServer(t, l, plainListen)
		require.NoError(t, l.Vanish(lab.Server))
		client := grpcClient(t, ln.Addr().String(), grpcdial.Options(c)...)
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := unary(rctx, client)
		assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		expectWithin(t, "gRPC client dial", time.Since(start), busyBound)
	})
}

func TestGRPCClientControl(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ln, _ := grpcServer(t, l, (&net.ListenConfig{}).Listen)
	client := grpcClient(t, ln.Addr().String()) // stock grpc-go: no pings
	require.NoError(t, unary(t.Context(), client))
	require.NoError(t, l.Vanish(lab.Server))
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- unary(t.Context(), client) }()
	f, err := sockfind.Peer(ln.Addr(), nil)
	require.NoError(t, err)
	defer f.Close()
	rc, err := f.SyscallConn()
	require.NoError(t, err)
	stillEstablished(t, rc, start)
	select {
	case err := <-errc:
		t.Fatalf("stock RPC ended: %v", err)
	default:
	}
}

// TestGRPCServer: a server with grpcserver finds a vanished client within
// the bound, idle or writing a stream. It runs before the parallel tests,
// its cells beside each other only: its writer is held to the busy bound
// (see the package doc).
func TestGRPCServer(t *testing.T) {
	c := kit(t)
	idleBound, busyBound := windows(c)

	for _, tc := range []struct {
		name  string
		busy  bool
		bound window
	}{
		// Idle, but the vanishing comes right after an RPC: the last
		// frames may still be unacknowledged, so it may be busy after all.
		{"idle connection, client vanishes", false, either(idleBound, busyBound)},
		{"server writing a stream, client vanishes", true, busyBound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			ln, w := grpcServer(t, l, func(ctx context.Context, network, addr string) (net.Listener, error) {
				return grpcserver.Listen(ctx, network, addr, c)
			}, grpcserver.Options(c)...)
			client := grpcClient(t, ln.Addr().String())
			if tc.busy {
				streamErr(t, t.Context(), client)
			} else {
				require.NoError(t, unary(t.Context(), client))
			}
			require.Equal(t, 1, w.Open())
			require.NoError(t, l.Vanish(lab.Client))
			start := time.Now()
			end, open := w.WaitOpen(0, start.Add(3*tc.bound.bound))
			require.Equal(t, 0, open, "server connection not reaped")
			expectWithin(t, "gRPC server "+tc.name, end.Sub(start), tc.bound)
		})
	}
}

func TestGRPCServerControl(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ln, w := grpcServer(t, l, (&net.ListenConfig{}).Listen) // stock grpc-go server
	client := grpcClient(t, ln.Addr().String())
	streamErr(t, t.Context(), client)
	require.NoError(t, l.Vanish(lab.Client))
	start := time.Now()
	f, err := sockfind.Local(ln.Addr())
	require.NoError(t, err)
	defer f.Close()
	rc, err := f.SyscallConn()
	require.NoError(t, err)
	stillEstablished(t, rc, start)
	assert.Equal(t, 1, w.Open(), "stock server still holds the connection at 3 x budget")
}

// TestGRPCFailFastAndReconnect: an in-flight RPC fails with Unavailable
// within the bound, and once the path is back the same ClientConn serves
// the next RPC.
func TestGRPCFailFastAndReconnect(t *testing.T) {
	t.Parallel()
	c := kit(t)
	_, busyBound := windows(c)
	l := newLab(t)
	ln, _ := grpcServer(t, l, (&net.ListenConfig{}).Listen)
	client := grpcClient(t, ln.Addr().String(), grpcdial.Options(c)...)
	errc := streamErr(t, t.Context(), client)
	require.NoError(t, l.Vanish(lab.Server))
	start := time.Now()
	end, err := waitErr(t, errc, 3*busyBound.bound)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	expectWithin(t, "gRPC in-flight stream", end.Sub(start), busyBound)

	require.NoError(t, l.Restore(lab.Server))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, unary(ctx, client), "the same ClientConn reconnects")
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err)
}

// TestGRPCServerReapsAtScale: a server holding many vanished clients ends
// every accepted socket within the bound plus 2 s, and its descriptors and
// goroutines return to their baseline. It counts the whole process's, so it
// runs alone: not in parallel.
func TestGRPCServerReapsAtScale(t *testing.T) {
	n := 2000
	if s := os.Getenv("GHOSTSOCK_REAP_N"); s != "" {
		n, _ = strconv.Atoi(s)
	} else if testing.Short() {
		n = 200
	}
	c, m := counted(t)
	idleBound, busyBound := c.Bounds()
	bound := max(idleBound, busyBound) // some of the last frames may be unacknowledged
	l := newLab(t)
	fds0, g0 := countFDs(t), runtime.NumGoroutine()

	ln, w := grpcServer(t, l, func(ctx context.Context, network, addr string) (net.Listener, error) {
		return grpcserver.Listen(ctx, network, addr, c)
	}, grpcserver.Options(c)...)
	conns := make([]*grpc.ClientConn, n)
	for i := range conns {
		cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		conns[i] = cc
		require.NoError(t, unary(t.Context(), testpb.NewTestServiceClient(cc)))
	}
	require.Equal(t, n, w.Open())
	fds1, g1 := countFDs(t), runtime.NumGoroutine()
	t.Logf("%d connections: fds %d -> %d, goroutines %d -> %d", n, fds0, fds1, g0, g1)

	require.NoError(t, l.Vanish(lab.Client))
	start := time.Now()
	end, open := w.WaitOpen(0, start.Add(bound+2*time.Second))
	require.Equal(t, 0, open, "%d of %d server connections not reaped within %v", open, n, bound+2*time.Second)
	t.Logf("reaped %d connections, last after %v (bound %v)", n, end.Sub(start).Round(time.Millisecond), bound)
	assert.LessOrEqual(t, end.Sub(start), bound+2*time.Second)

	// Every reap counted once, as a reap, on the accepted side.
	r, err := m.Read()
	require.NoError(t, err)
	acc := "ghostsock.connection.side=accepted"
	idle := r.Sum(ghostmetrics.EndedName, acc, "ghostsock.connection.end_cause=reaped_idle")
	busy := r.Sum(ghostmetrics.EndedName, acc, "ghostsock.connection.end_cause=reaped_busy")
	t.Logf("counted: hardened %d, ended %d (reaped idle %d, busy %d), open %d",
		r.Sum(ghostmetrics.HardenedName, acc), r.Sum(ghostmetrics.EndedName, acc), idle, busy, r.Sum(ghostmetrics.CountName, acc))
	assert.EqualValues(t, n, r.Sum(ghostmetrics.HardenedName, acc))
	assert.EqualValues(t, n, idle+busy, "reaps counted")
	assert.EqualValues(t, n, r.Sum(ghostmetrics.EndedName, acc), "no other ends")
	assert.EqualValues(t, 0, r.Sum(ghostmetrics.CountName, acc))
	count, _, maxSilence := r.Observations(ghostmetrics.SilenceName, acc)
	assert.EqualValues(t, n, count)
	assert.LessOrEqual(t, maxSilence, (bound + 2*time.Second).Seconds())

	// The server's sockets are gone: only the (vanished) clients' remain.
	assert.Eventually(t, func() bool { return countFDs(t) <= fds0+n+1 }, 5*time.Second, 50*time.Millisecond,
		"server descriptors not released: %d open, baseline %d + %d client sockets", countFDs(t), fds0, n)
	fds2 := countFDs(t)
	for _, cc := range conns {
		cc.Close()
	}
	ln.Close()
	assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= g0+10 && countFDs(t) <= fds0+1 }, 10*time.Second, 50*time.Millisecond,
		"after closing the clients: goroutines %d (baseline %d), fds %d (baseline %d)", runtime.NumGoroutine(), g0, countFDs(t), fds0)
	t.Logf("after reap: fds %d (baseline %d + %d clients); after closing clients: fds %d, goroutines %d (baseline %d, %d)",
		fds2, fds0, n, countFDs(t), runtime.NumGoroutine(), fds0, g0)
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// TestGRPCLeanClient: with c.Lean() on the client and c on the server,
// only the server probes. An idle lean client does not notice its server
// vanish; its next RPC fails within the busy window.
func TestGRPCLeanClient(t *testing.T) {
	t.Parallel()
	c := kit(t)
	idle, busyBound := windows(c)
	l := newLab(t)
	ln := kitGRPCServer(t, l, c)
	var conn net.Conn
	// grpcdial.Options' own dialer, kept to read the socket.
	client := grpcClient(t, ln.Addr().String(), append(grpcdial.Options(c.Lean()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var err error
			conn, err = c.Lean().Dialer().DialContext(ctx, "tcp", addr)
			return conn, err
		}))...)
	require.NoError(t, unary(t.Context(), client))
	held, err := tuning.Read(conn)
	require.NoError(t, err)
	assert.False(t, held.KeepAlive.Enable, "the lean client sends no keepalive probes")
	// Idle means the conversation is over as the server vanishes: nothing
	// heard from it for a while, nothing unacknowledged. grpc-go answers a
	// server's frames (its PINGs) as they come, and a client that answers
	// after the vanishing is busy, not idle: its user timeout ends it.
	rc := rawConn(t, conn)
	require.Eventually(t, func() bool {
		info, err := lab.TCPInfo(rc)
		return err == nil && info.Unacked == 0 && info.Notsent_bytes == 0 &&
			time.Duration(info.Last_data_recv)*time.Millisecond >= 300*time.Millisecond
	}, 5*time.Second, 5*time.Millisecond, "the client's conversation over")
	require.NoError(t, l.Vanish(lab.Server))
	time.Sleep(idle.bound + time.Second)
	info, err := lab.TCPInfo(rc)
	require.NoError(t, err)
	assert.Equal(t, uint8(lab.StateEstablished), info.State, "idle, the lean client has not noticed")
	start := time.Now()
	err = unary(t.Context(), client)
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	expectWithin(t, "lean gRPC client, next RPC", time.Since(start), busyBound)
}

// TestGRPCLeanClientLearns: a Lean client (grpcdial.Options(c.Lean()))
// sends nothing while its channel idles, but while an RPC waits, here a
// server stream between two messages, it probes with c's schedule, and
// learns of a vanished server within c.Lean().AwaitBound().
func TestGRPCLeanClientLearns(t *testing.T) {
	t.Parallel()
	c := kit(t)
	idle, _ := windows(c)
	l := newLab(t)
	ln := kitGRPCServer(t, l, c)
	var raw net.Conn // the client's socket, to read its options
	dial := grpcdial.Settings{Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		var err error
		raw, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		return raw, err
	}}
	client := grpcClient(t, ln.Addr().String(), dial.Options(c.Lean())...)
	require.NoError(t, unary(t.Context(), client))
	probing := func() bool {
		held, err := tuning.Read(raw)
		require.NoError(t, err)
		return held.KeepAlive.Enable
	}
	assert.False(t, probing(), "the idle lean client sends no keepalive probes")
	// One message now, the next after three budgets: the client waits.
	stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{
		{Size: 1}, {Size: 1, IntervalUs: int32(3 * budget / time.Microsecond)},
	}})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.NoError(t, err)
	assert.True(t, probing(), "awaiting the stream, it probes")
	errc := make(chan error, 1)
	go func() {
		_, err := stream.Recv()
		errc <- err
	}()
	require.NoError(t, l.Vanish(lab.Server))
	start := time.Now()
	end, err := waitErr(t, errc, 3*budget)
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	expectWithin(t, "lean gRPC client awaiting a stream", end.Sub(start), window{idle.earliest, c.Lean().AwaitBound()})
}
