package httptransport

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/ghostsock/ghostsock/tuning"
)

// New returns a new *http.Transport with http.DefaultTransport's settings
// (proxy from the environment, HTTP/2 attempted, 100 idle connections kept
// for 90 s, 10 s TLS handshake timeout, 1 s Expect-Continue timeout) whose
// every connection is dialed with c's options and guarded (see Harden),
// and with no HTTP/2 PING health checks. Each call returns a transport of its own; no global is
// read or changed.
//
// An invalid c makes every request fail with c's validation error.
func New(c tuning.Config) *http.Transport {
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
	Harden(t, c)
	return t
}

// Harden makes t dial with c's options, guarded where the guard applies
// (tuning.Config.DialFunc; c.NoGuard to go without), and switches its
// HTTP/2 PING health check off on a copy of t.HTTP2; its proxy, TLS, pool
// and HTTP/2 settings stay. Call it before t's first request; it is
// idempotent. With no dial function of its own t dials with c.Dialer()
// (tuning.DialTimeout); a DialContext or Dial of yours is wrapped, and one
// that returns a wrapper fails each dial with a *tuning.WrapperError
// unless c.NoGuard. A DialTLSContext or DialTLS of yours gets the options
// beneath its TLS, unguarded. Health checks set through x/net/http2's
// ConfigureTransports are out of reach: use HardenHTTP2 there.
func Harden(t *http.Transport, c tuning.Config) {
	dial := t.DialContext
	//lint:ignore SA1019 honour the deprecated field if it is the one set
	if dial == nil && t.Dial != nil {
		//lint:ignore SA1019 as above
		old := t.Dial
		dial = func(_ context.Context, network, addr string) (net.Conn, error) { return old(network, addr) }
		t.Dial = nil //lint:ignore SA1019 replaced by DialContext
	}
	t.DialContext = c.DialFunc(dial) // nil: c.Dialer()
	//lint:ignore SA1019 honour the deprecated field if it is the one set
	if t.DialTLSContext == nil && t.DialTLS != nil {
		//lint:ignore SA1019 as above
		old := t.DialTLS
		t.DialTLSContext = func(_ context.Context, network, addr string) (net.Conn, error) { return old(network, addr) }
		t.DialTLS = nil //lint:ignore SA1019 replaced by DialTLSContext
	}
	if t.DialTLSContext != nil {
		// c as given, unguarded: validated as DialContext's is, which
		// DialFunc with NoGuard set would not be.
		//lint:ignore SA1019 the one entry point that does both
		t.DialTLSContext = c.WrapDialContext(t.DialTLSContext)
	}
	if t.HTTP2 != nil {
		h2 := *t.HTTP2
		h2.SendPingTimeout = 0
		t.HTTP2 = &h2
	}
}
