//go:build linux

package integration

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/grpcserver"
)

// TestMixedFleetPingingClients: during a migration some clients still send
// gRPC keepalive pings every 10 s, the shortest grpc-go allows, even with no
// RPC in flight. A server with grpcserver.Options must not answer them
// with GOAWAY too_many_pings: the connection stays, RPCs keep working.
func TestMixedFleetPingingClients(t *testing.T) {
	t.Parallel()
	c := kit(t)
	l := newLab(t)
	ln, watch := grpcServer(t, l, func(ctx context.Context, network, addr string) (net.Listener, error) {
		return grpcserver.Listen(ctx, network, addr, c)
	}, grpcserver.Options(c)...)
	pinger := grpcClient(t, ln.Addr().String(), grpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true,
	}))
	require.NoError(t, unary(t.Context(), pinger))
	// Three pings with no RPC in flight, then RPCs between pings.
	time.Sleep(31 * time.Second)
	for range 3 {
		require.NoError(t, unary(t.Context(), pinger))
		time.Sleep(time.Second)
	}
	assert.Equal(t, 1, watch.Begun(), "the pinging client kept its connection (no GOAWAY, no reconnect)")
	assert.Equal(t, 1, watch.Open())
}

// TestMixedFleetStockServer: ghostsock clients against a server with
// grpc-go's stock settings (which pings nobody and allows no client pings
// without streams: grpcdial sends none).
func TestMixedFleetStockServer(t *testing.T) {
	t.Parallel()
	c := kit(t)
	l := newLab(t)
	ln, watch := grpcServer(t, l, (&net.ListenConfig{}).Listen)
	client := grpcClient(t, ln.Addr().String(), grpcdial.Options(c)...)
	require.NoError(t, unary(t.Context(), client))

	const msgs, size = 256, 32 << 10
	checkStream(t, patternStream(t, client, msgs, size, 0), msgs, size, nil)
	assert.Equal(t, 1, watch.Begun())
}
