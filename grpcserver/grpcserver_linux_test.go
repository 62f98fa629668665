package grpcserver

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/ghostsock/ghostsock/internal/grpcping"
	"github.com/ghostsock/ghostsock/internal/sockfind"
	"github.com/ghostsock/ghostsock/tuning"
)

// accepted serves the health service on ln with opts, makes one RPC from a
// stock client and returns what the kernel holds on the server's socket.
func accepted(t *testing.T, ln net.Listener, opts ...grpc.ServerOption) tuning.Config {
	srv := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	defer srv.Stop()

	var local net.Addr
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err == nil {
				local = conn.LocalAddr()
			}
			return conn, err
		}))
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	held, err := sockfind.Read(ln.Addr(), local)
	require.NoError(t, err)
	return held
}

func TestServerSocketHoldsConfigAfterFirstRPC(t *testing.T) {
	c, err := tuning.ForBudget(9 * time.Second)
	require.NoError(t, err)
	t.Run("Listen", func(t *testing.T) {
		ln, err := Listen(t.Context(), "tcp", "127.0.0.1:0", c)
		require.NoError(t, err)
		assert.Equal(t, c, accepted(t, ln, Options(c)...))
	})
	t.Run("WrapListener", func(t *testing.T) {
		plain, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		assert.Equal(t, c, accepted(t, WrapListener(plain, c), Options(c)...))
	})
	// grpc-go sets its keepalive Timeout (20 s by default) as the user
	// timeout on a *net.TCPConn whenever keepalive Time is not infinite:
	// with no Options, or with the server's own KeepaliveParams in either
	// order. The kit's connections are no *net.TCPConn, so it cannot, with
	// or without an Observer.
	own := grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: time.Hour})
	observed := c
	observed.Observer = tuning.NewObserver(func(tuning.Event) {})
	for _, tc := range []struct {
		name string
		c    tuning.Config
		opts []grpc.ServerOption
	}{
		{"no Options", c, nil},
		{"own KeepaliveParams after Options", c, append(Options(c), own)},
		{"own KeepaliveParams before Options", c, append([]grpc.ServerOption{own}, Options(c)...)},
		{"own KeepaliveParams after Options, observed", observed, append(Options(c), own)},
		{"Settings with the server's own", c, Settings{Keepalive: keepalive.ServerParameters{MaxConnectionAge: time.Hour}}.Options(c)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := Listen(t.Context(), "tcp", "127.0.0.1:0", tc.c)
			require.NoError(t, err)
			assert.Equal(t, c, accepted(t, ln, tc.opts...), "the user timeout stays the Config's")
		})
	}
}

func TestSettingsMerge(t *testing.T) {
	kp, ep := Settings{}.merged()
	assert.Equal(t, keepalive.ServerParameters{Time: grpcping.Off}, kp, "Options: no server pings")
	assert.Equal(t, keepalive.EnforcementPolicy{MinTime: MinClientPingInterval, PermitWithoutStream: true}, ep)

	own := keepalive.ServerParameters{MaxConnectionIdle: time.Minute, MaxConnectionAge: time.Hour, MaxConnectionAgeGrace: time.Second}
	strict := &keepalive.EnforcementPolicy{MinTime: time.Minute}
	kp, ep = Settings{Keepalive: own, Enforcement: strict}.merged()
	want := own
	want.Time = grpcping.Off
	assert.Equal(t, want, kp, "the server's own values kept, pings off")
	assert.Equal(t, *strict, ep, "the server's own policy kept")

	pings := keepalive.ServerParameters{Time: time.Minute, Timeout: 5 * time.Second}
	kp, _ = Settings{Keepalive: pings}.merged()
	assert.Equal(t, pings, kp, "pings asked for are kept")
}

// MaxConnectionAge given to Settings reaches grpc-go: the server sends
// GOAWAY once the age has passed, and the client dials again.
func TestSettingsKeepsMaxConnectionAge(t *testing.T) {
	c, err := tuning.ForBudget(9 * time.Second)
	require.NoError(t, err)
	ln, err := Listen(t.Context(), "tcp", "127.0.0.1:0", c)
	require.NoError(t, err)
	s := Settings{Keepalive: keepalive.ServerParameters{MaxConnectionAge: 300 * time.Millisecond, MaxConnectionAgeGrace: 100 * time.Millisecond}}
	srv := grpc.NewServer(s.Options(c)...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	defer srv.Stop()
	var dials atomic.Int32
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}))
	require.NoError(t, err)
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	deadline := time.Now().Add(5 * time.Second)
	for dials.Load() < 2 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		hc.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	assert.GreaterOrEqual(t, dials.Load(), int32(2), "the connection was aged out and dialed again")
}

func TestInvalidConfig(t *testing.T) {
	bad := tuning.Config{KeepAlive: net.KeepAliveConfig{Enable: true, Count: 500}}
	_, err := Listen(t.Context(), "tcp", "127.0.0.1:0", bad)
	assert.ErrorIs(t, err, tuning.ErrInvalidConfig)

	plain, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(Options(bad)...)
	err = srv.Serve(WrapListener(plain, bad)) // returns at the first Accept
	assert.ErrorIs(t, err, tuning.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "KeepAlive.Count")
}
