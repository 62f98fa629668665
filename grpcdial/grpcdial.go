package grpcdial

import (
	"context"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ghostsock/ghostsock/internal/grpcping"
	"github.com/ghostsock/ghostsock/tuning"
)

// Options returns the dial options that make a grpc.ClientConn detect a
// vanished server in the kernel: grpc.WithContextDialer over sockets set
// with c before connect(2), and keepalive pings off. Pass them to
// grpc.NewClient with your own credentials; proxies in the environment are
// honoured as stock grpc-go honours them (see the package doc). An invalid
// c fails every connection attempt (RPCs see codes.Unavailable). c.Observer
// counts every TCP connection; the guard is off, as HTTP/2 never shuts the
// window.
func Options(c tuning.Config) []grpc.DialOption { return Settings{}.Options(c) }

// Settings are the choices grpc-go offers as dial options for its own
// dialer, which Options takes away by setting one: the zero value does
// what a stock grpc.ClientConn does with no such option.
type Settings struct {
	// NoProxy dials every address directly, whatever HTTPS_PROXY says:
	// grpc.WithNoProxy's equivalent.
	NoProxy bool
	// LocalDNSResolution resolves dns targets here, even when they go
	// through a proxy, which is then asked to CONNECT to their IP
	// addresses: grpc.WithLocalDNSResolution's equivalent. By default a
	// proxied dns target is resolved by the proxy (CONNECT host:port).
	LocalDNSResolution bool

	// Dial, if set, makes the channel's connections, as the function given
	// to grpc.WithContextDialer would: pass it here instead, since a
	// second WithContextDialer replaces the kit's (or the kit's replaces
	// it) and the socket is then left without c's options. It is wrapped,
	// not replaced: c's options are set on the TCP connection it returns,
	// reaching through wrappers with a NetConn method, and the connection
	// is counted if c.Observer is set. It gets the address as grpc-go
	// hands it to a custom dialer. As with grpc.WithContextDialer, the
	// channel then uses no proxy from the environment.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// Options is the package-level Options with s's choices.
func (s Settings) Options(c tuning.Config) []grpc.DialOption {
	c.NoGuard = true // HTTP/2 never shuts the TCP window: see package grpcserver
	opts := []grpc.DialOption{grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: grpcping.Off})}
	var a *awaiter
	if c.LeanAwaits() {
		// A Lean client probes while an RPC waits (see awaiter).
		a = &awaiter{}
		opts = append(opts, grpc.WithStatsHandler(a))
	}
	if s.Dial != nil {
		own := s.Dial
		dial := a.record(c.DialFunc(func(ctx context.Context, _, addr string) (net.Conn, error) { return own(ctx, addr) }))
		return append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dial(ctx, "tcp", addr)
		}))
	}
	dial := a.record(c.DialFunc(nil))
	if s.NoProxy {
		return append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			network, address := parseAddr(addr)
			return dial(ctx, network, address)
		}))
	}
	return s.proxied(opts, dial, newProxies(s.LocalDNSResolution))
}

// proxied adds the resolvers and the dialer that route through p.
func (s Settings) proxied(opts []grpc.DialOption, dial tuning.DialContextFunc, p *proxies) []grpc.DialOption {
	return append(opts,
		grpc.WithResolvers(p.builders()...),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			network, address := parseAddr(addr)
			if proxy := p.route(addr); proxy != nil && network == "tcp" {
				return dialProxy(ctx, dial, proxy, address)
			}
			return dial(ctx, network, address)
		}))
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
