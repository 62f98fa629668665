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

// Harden makes t dial with c's options and switches its HTTP/2 PING health
// checks off, keeping its proxy, TLS, pool and HTTP/2 settings. Call it
// before t makes its first request. Harden is idempotent: a transport
// from New, or hardened before, or dialing with c.DialFunc already, has
// each connection handled once, and a different c takes over its options
// (see tuning.Config.WrapListener).
//
//   - With no dial function of its own, t dials with c.Dialer(): the
//     options are set before connect(2), covering the handshake too, and
//     the dial times out after tuning.DialTimeout (30 s), as
//     http.DefaultTransport's does.
//   - A DialContext or Dial of the caller's is kept and wrapped: the
//     options are set on the connection it returns; a connection without
//     a TCP socket passes.
//   - Either way the connection is guarded where the guard applies
//     (tuning.Config.DialFunc): a server that stops reading a large
//     request body for longer than UserTimeout is not cut off, as it
//     would be by the kernel's zero-window rule. Set c.NoGuard to go
//     without. TLS runs on top of the guarded connection. A DialContext
//     of the caller's that returns a connection beneath a wrapper of its
//     own fails each dial with a *tuning.WrapperError, unless c.NoGuard.
//   - A DialTLSContext or DialTLS of the caller's returns the TLS
//     connection, too late to guard beneath it: it is wrapped with
//     DialFunc with NoGuard set: the options set, unguarded and not observed. The
//     deprecated DialTLS is moved into DialTLSContext, wrapped.
//   - HTTP2.SendPingTimeout, the health check, is set to zero on a copy
//     of t.HTTP2 (the caller's value is not changed). Health checks
//     configured through golang.org/x/net/http2.ConfigureTransports live
//     on that package's transport, out of Harden's reach: leave its
//     ReadIdleTimeout zero, or use HardenHTTP2.
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
		unguarded := c
		unguarded.NoGuard = true
		t.DialTLSContext = unguarded.DialFunc(t.DialTLSContext)
	}
	if t.HTTP2 != nil {
		h2 := *t.HTTP2
		h2.SendPingTimeout = 0
		t.HTTP2 = &h2
	}
}
