package httptransport

import (
	"context"
	"crypto/tls"
	"net"

	"golang.org/x/net/http2"

	"github.com/ghostsock/ghostsock/tuning"
)

// NewHTTP2 returns a new golang.org/x/net/http2.Transport for HTTP/2 over
// TLS whose every connection is dialed with c's options, before connect(2),
// and with its PING health check off: what New is for net/http's own
// transport, for code that uses x/net's. TLS runs on the hardened socket
// with the transport's TLSClientConfig, as x/net's own dial does. Each call
// returns a transport of its own.
func NewHTTP2(c tuning.Config) *http2.Transport {
	t := &http2.Transport{}
	HardenHTTP2(t, c)
	return t
}

// NewH2C returns a new golang.org/x/net/http2.Transport for HTTP/2 without
// TLS (h2c with prior knowledge, as gRPC-web and Connect clients over
// cleartext use): AllowHTTP, and a DialTLSContext that dials plain TCP
// with c's options and ignores the TLS config, with its PING health check
// off. Use it for http:// URLs only.
func NewH2C(c tuning.Config) *http2.Transport {
	dial := dialFunc(c)
	return &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return dial(ctx, network, addr)
		},
	}
}

// HardenHTTP2 makes t, a golang.org/x/net/http2.Transport, dial with c's
// options and switches its PING health check off (ReadIdleTimeout 0), so
// that the kernel finds a vanished server within c.Bounds(). Call it
// before t's first request. With no dial function of its own t dials TCP
// with c's options and runs TLS over it; a DialTLSContext or DialTLS of
// yours (h2c's plain one too) gets the options beneath its TLS. The guard
// is never used, as HTTP/2 never shuts the window; c.Observer counts the
// connections t dials itself.
func HardenHTTP2(t *http2.Transport, c tuning.Config) {
	t.ReadIdleTimeout = 0 // no PING health check
	switch {
	case t.DialTLSContext != nil:
		t.DialTLSContext = wrapTLSDial(c, t.DialTLSContext)
	case t.DialTLS != nil:
		old := t.DialTLS
		t.DialTLSContext = wrapTLSDial(c, func(_ context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			return old(network, addr, cfg)
		})
		t.DialTLS = nil
	default:
		dial := dialFunc(c)
		t.DialTLSContext = func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		}
	}
}

// dialFunc is c's dial function for HTTP/2: no guard, observed if c says.
func dialFunc(c tuning.Config) tuning.DialContextFunc {
	c.NoGuard = true
	return c.DialFunc(nil)
}

// wrapTLSDial sets c's options on what dial returns. c is compiled once:
// the TLS config each dial gets travels to dial in the context.
func wrapTLSDial(c tuning.Config, dial func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error)) func(context.Context, string, string, *tls.Config) (net.Conn, error) {
	c.NoGuard = true
	wrapped := c.DialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		cfg, _ := ctx.Value(tlsConfigKey{}).(*tls.Config)
		return dial(ctx, network, addr, cfg)
	})
	return func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
		return wrapped(context.WithValue(ctx, tlsConfigKey{}, cfg), network, addr)
	}
}

type tlsConfigKey struct{}
