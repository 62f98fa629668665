//go:build linux

package integration

import (
	"context"
	"io"
	"net"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// TestNoLeaksAfterFailedCycles runs 10,000 dial/accept cycles that each end
// in an error, of every kind the kit can meet, and checks that no file
// descriptor and no goroutine is left behind. It counts the whole
// process's, so it runs alone: not in parallel.
func TestNoLeaksAfterFailedCycles(t *testing.T) {
	const cycles = 10000
	c := kit(t)
	bad := tuning.Config{UserTimeout: -time.Second}
	l := newLab(t)
	gone := newLab(t) // a server host that has vanished
	require.NoError(t, gone.Vanish(lab.Server))

	badLn, err := l.Listen((&net.ListenConfig{}).Listen, "tcp", l.ServerAddrPort(0))
	require.NoError(t, err)
	defer badLn.Close()
	badAccept := bad.WrapListener(badLn)
	rstLn, err := l.Listen(c.Listen, "tcp", l.ServerAddrPort(0))
	require.NoError(t, err)
	defer rstLn.Close()
	closedAddr := func() string { // a port with no listener: RST
		// Made after the listeners above, so that none of them can be
		// given the port it frees; nothing listens in this lab later.
		ln, err := l.Listen((&net.ListenConfig{}).Listen, "tcp", l.ServerAddrPort(0))
		require.NoError(t, err)
		defer ln.Close()
		return ln.Addr().String()
	}()
	gdial := guardedDial(c)

	kinds := []struct {
		name string
		run  func() error // returns the cycle's error, which must not be nil
	}{
		{"invalid config at dial", func() error {
			c, err := bad.Dialer().Dial("tcp", rstLn.Addr().String())
			if c != nil {
				c.Close()
			}
			return err
		}},
		{"connection refused", func() error {
			_, err := c.Dialer().Dial("tcp", closedAddr)
			return err
		}},
		{"dial deadline to a vanished host", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			_, err := c.Dialer().DialContext(ctx, "tcp", gone.ServerAddrPort(9))
			return err
		}},
		{"invalid config at accept", func() error {
			conn, err := net.Dial("tcp", badLn.Addr().String())
			if err != nil {
				return err
			}
			defer conn.Close()
			s, err := badAccept.Accept()
			if s != nil {
				s.Close()
			}
			return err
		}},
		{"peer reset after accept", func() error {
			conn, err := c.Dialer().Dial("tcp", rstLn.Addr().String())
			if err != nil {
				return err
			}
			defer conn.Close()
			s, err := rstLn.Accept()
			if err != nil {
				return err
			}
			bareTCP(s).SetLinger(0)
			s.Close()
			_, err = io.ReadAll(conn)
			return err
		}},
		{"guarded writer, peer reset", func() error {
			conn, err := gdial("tcp", rstLn.Addr().String())
			if err != nil {
				return err
			}
			defer conn.Close()
			s, err := rstLn.Accept()
			if err != nil {
				return err
			}
			if _, err := conn.Write([]byte("arms the guard")); err != nil {
				return err
			}
			bareTCP(s).SetLinger(0)
			s.Close()
			_, err = io.ReadAll(conn)
			return err
		}},
		{"Apply on a closed conn", func() error {
			conn, err := net.Dial("tcp", rstLn.Addr().String())
			if err != nil {
				return err
			}
			s, err := rstLn.Accept()
			if err != nil {
				conn.Close()
				return err
			}
			s.Close()
			conn.Close()
			return c.Apply(conn)
		}},
		{"gRPC RPC to a refused address", func() error {
			cc, err := grpc.NewClient("passthrough:///"+closedAddr, append(grpcdial.Options(c), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
			if err != nil {
				return err
			}
			defer cc.Close()
			_, err = testpb.NewTestServiceClient(cc).UnaryCall(context.Background(), &testpb.SimpleRequest{})
			return err
		}},
	}
	// One warm-up round, so that lazily made runtime state (timers, the
	// netpoller, grpc-go's globals) is in the baseline.
	for _, k := range kinds {
		require.Error(t, k.run(), k.name)
	}
	settle := func() (fds, gs int) {
		runtime.GC()
		time.Sleep(100 * time.Millisecond)
		return countFDs(t), runtime.NumGoroutine()
	}
	fds0, g0 := settle()

	deadline := time.Now().Add(3 * time.Minute)
	counts := make(map[string]int)
	for i := 0; i < cycles && time.Now().Before(deadline); i++ {
		k := kinds[i%len(kinds)]
		err := k.run()
		if !assert.Error(t, err, k.name) {
			break
		}
		counts[k.name]++
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	require.Equal(t, cycles, total, "cycles run before the deadline")

	// Polled here, not with assert.Eventually, whose own goroutine would
	// count.
	fds1, g1 := settle()
	for end := time.Now().Add(10 * time.Second); (fds1 > fds0 || g1 > g0) && time.Now().Before(end); {
		fds1, g1 = settle()
	}
	t.Logf("%d failed cycles %v: fds %d -> %d, goroutines %d -> %d", total, counts, fds0, fds1, g0, g1)
	assert.LessOrEqual(t, fds1, fds0, "file descriptors left behind")
	if !assert.LessOrEqual(t, g1, g0, "goroutines left behind") {
		var stacks strings.Builder
		pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Log(stacks.String())
	}
}

// bareTCP is the *net.TCPConn of conn, beneath the guard that Listen puts
// on accepted connections by default.
func bareTCP(conn net.Conn) *net.TCPConn {
	if g, ok := conn.(*tuning.GuardedConn); ok {
		return g.NetConn().(*net.TCPConn)
	}
	return conn.(*net.TCPConn)
}
