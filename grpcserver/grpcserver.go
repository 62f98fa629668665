package grpcserver

import (
	"context"
	"math"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ghostsock/ghostsock/tuning"
)

// pingsOff is grpc-go's "infinity" for ServerParameters.Time: no server
// pings, and TCP_USER_TIMEOUT left as the listener set it
// (internal/transport/http2_server.go).
const pingsOff = time.Duration(math.MaxInt64)

// MinClientPingInterval is the enforcement policy's MinTime: clients that
// still ping (during a migration, or other languages' defaults) are
// accepted as long as they ping no more often than this. grpc-go, Java and
// C++ clients cannot ping more often than every 10 s, so none of them is
// sent GOAWAY too_many_pings; a ping flood still is.
const MinClientPingInterval = 5 * time.Second

// Listen announces on the local address with c's options on every accepted
// connection; see tuning.Config.Listen. Its connections are not guarded
// (c.NoGuard is set): HTTP/2 never lets the TCP window shut (see the
// package doc), and the listener is the *net.TCPListener itself.
func Listen(ctx context.Context, network, address string, c tuning.Config) (net.Listener, error) {
	c.NoGuard = true
	return c.Listen(ctx, network, address)
}

// WrapListener sets c's options on every connection ln accepts; see
// tuning.Config.WrapListener. Like Listen, it does not guard.
func WrapListener(ln net.Listener, c tuning.Config) net.Listener {
	c.NoGuard = true
	return c.WrapListener(ln)
}

// Options returns the server options to pass to grpc.NewServer with a
// listener from Listen or WrapListener:
//
//   - keepalive.ServerParameters with Time infinite: the server sends no
//     pings and, above all, grpc-go no longer sets TCP_USER_TIMEOUT to its
//     keepalive Timeout (20 s by default) on every accepted connection,
//     which would replace c.UserTimeout;
//   - keepalive.EnforcementPolicy with MinTime MinClientPingInterval and
//     PermitWithoutStream, so clients that still ping are not sent GOAWAY
//     too_many_pings.
//
// The options do not depend on c's fields: detection lives in the
// listener. c is taken so that server and listener are configured from
// one value in one place, and it is validated by Listen and WrapListener.
func Options(c tuning.Config) []grpc.ServerOption {
	_ = c
	return []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: pingsOff}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             MinClientPingInterval,
			PermitWithoutStream: true,
		}),
	}
}
