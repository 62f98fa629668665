package grpcserver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

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
	t.Run("without Options grpc-go overwrites the user timeout", func(t *testing.T) {
		ln, err := Listen(t.Context(), "tcp", "127.0.0.1:0", c)
		require.NoError(t, err)
		held := accepted(t, ln)
		assert.Equal(t, 20*time.Second, held.UserTimeout, "grpc-go's default keepalive Timeout")
		assert.Equal(t, c.KeepAlive, held.KeepAlive)
	})
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
