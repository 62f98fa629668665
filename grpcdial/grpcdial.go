package grpcdial

import (
	"context"
	"math"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ghostsock/ghostsock/tuning"
)

// pingsOff is grpc-go's own "infinity" for keepalive Time: with it the
// client sends no keepalive pings and does not set TCP_USER_TIMEOUT
// (internal/transport/http2_client.go).
const pingsOff = time.Duration(math.MaxInt64)

// Options returns the dial options that make a grpc.ClientConn detect a
// vanished server in the kernel: grpc.WithContextDialer over sockets set
// with c before connect(2), and grpc.WithKeepaliveParams with pings off.
// Pass them to grpc.NewClient with your own credentials and options.
//
// An invalid c makes every connection attempt fail with c's validation
// error, which RPCs report as codes.Unavailable. With c.Observer set, every
// TCP connection the channel makes is counted (see tuning.Observer); the
// window guard is never used, since HTTP/2 never shuts the TCP window.
func Options(c tuning.Config) []grpc.DialOption {
	c.NoGuard = true // HTTP/2 never shuts the TCP window: see package grpcserver
	dial := c.DialFunc(nil)
	return []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			network, address := parseAddr(addr)
			return dial(ctx, network, address)
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: pingsOff}),
	}
}

// parseAddr undoes what grpc-go does to unix addresses before it hands
// them to a custom dialer (internal/transport/http2_client.go, dial):
// "unix://abs", "unix:rel" and "\x00abstract" are unix sockets, everything
// else is host:port.
func parseAddr(addr string) (network, address string) {
	switch {
	case strings.HasPrefix(addr, "unix://"):
		return "unix", strings.TrimPrefix(addr, "unix://")
	case strings.HasPrefix(addr, "unix:"):
		return "unix", strings.TrimPrefix(addr, "unix:")
	case strings.HasPrefix(addr, "\x00"):
		return "unix", "@" + addr[1:]
	}
	return "tcp", addr
}
