// Package httptransport gives net/http clients kernel-level detection of a
// server that vanished without FIN or RST, for HTTP/1.1 and HTTP/2 alike,
// with HTTP/2 PING health checks off.
//
//	c, err := tuning.ForBudget(20 * time.Second)
//	...
//	client := &http.Client{Transport: httptransport.New(c)}
//
// A pooled idle connection whose server vanished is ended by the kernel
// within c.Bounds() and dropped from the pool; a response being read from
// a vanished server fails within the busy bound instead of hanging until
// tcp_retries2 gives up (about 15 minutes). Unlike http.Client.Timeout, this
// does not limit how long a live, slow transfer may take.
//
// For servers, use tuning.Config.Listen or WrapListener with http.Server:
//
//	ln, err := c.Listen(ctx, "tcp", ":8080")
//	...
//	srv.Serve(ln)
//
// HTTP/1.1 has one more case: with a user timeout, Linux ends a connection
// whose peer keeps its receive window shut for the timeout, although the
// peer is alive (tuning/doc.go). Both sides are guarded by default: New
// and Harden dial through tuning.Config.DialFunc, so a request body
// survives a server that stops reading for longer than the budget, and
// Listen and WrapListener guard the responses a server writes to clients
// that pause (curl --limit-rate, a paused download). Set c.NoGuard for
// unguarded connections; c.StallTimeout bounds how long a live peer may stall
// a write. HTTP/2 needs no guard, its transport keeps reading the socket,
// and the guard costs an idle pooled connection nothing.
//
// HTTP/2 PING health checks (http.HTTP2Config.SendPingTimeout) are off by
// default in net/http; Harden keeps them off. Proxies keep working: the
// connection to the proxy is the one hardened.
//
// Code on golang.org/x/net/http2.Transport directly (h2c, gRPC-web and
// Connect clients over cleartext) has its own dialer and its own PING
// health check (ReadIdleTimeout, PingTimeout): NewHTTP2 (TLS), NewH2C
// (HTTP/2 without TLS, prior knowledge) and HardenHTTP2 (a transport you
// built) dial with the Config and switch the check off. net/http's own
// transport does h2c too since Go 1.24 (http.Protocols with
// SetUnencryptedHTTP2), and New's transport can be set so.
package httptransport
