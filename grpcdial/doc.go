// Package grpcdial gives a grpc.ClientConn kernel-level detection of a
// server that vanished without FIN or RST, with gRPC keepalive pings off.
//
//	c, err := tuning.ForBudget(20 * time.Second)
//	...
//	conn, err := grpc.NewClient(target, append(grpcdial.Options(c),
//		grpc.WithTransportCredentials(creds))...)
//
// Every connection the channel makes is dialed by tuning's Dialer, so
// TCP_USER_TIMEOUT and keepalive are on the socket before connect(2). When
// the server vanishes, the kernel ends the connection within c.Bounds();
// in-flight RPCs fail with codes.Unavailable and the channel reconnects as
// it does after any transport error. No goroutine, timer or ping per
// connection: the idle fleet in BENCHMARKS.md, part 1, shows the
// difference.
//
// # A Lean client that still learns
//
// With Options(c.Lean()) the client sends nothing while its channel
// idles: the server, with grpcserver.Options(c), probes for both ends. An
// RPC the client makes after the server vanished fails within the busy
// bound. So that a client waiting on an RPC (a response, a server
// stream's next message) learns too, Options then adds a stats handler
// that holds a tuning.Conn.Awaiting mark on the connection of every RPC in
// flight: the client's socket probes with c's keepalive schedule while
// one waits, and the server's vanishing during the wait is found within
// c.Lean().AwaitBound() (c's idle bound). It costs a setsockopt when a
// connection goes from no RPC in flight to one and back, and nothing on
// an idle channel (TestGRPCLeanClientLearns). A client holding a stream
// open for long (a push channel) therefore probes every KeepAlive.Idle
// while the stream is open. A connection that the kit hands back as
// something other than a *tuning.Conn is not marked and learns only when
// it next sends: one from a Settings.Dial that returns a *tls.Conn or
// another wrapper the kit leaves as it is.
//
// # Resolvers, credentials, proxies
//
// Any resolver works (dns, passthrough, unix, your own): grpc-go resolves
// the target and hands each address to the dialer. TLS and other transport
// credentials run on top of the hardened socket as usual.
//
// Proxies from the environment are honoured as stock grpc-go honours them,
// although grpc-go itself skips its proxy support whenever a custom dialer
// is set (resolver_wrapper.go), and Options must set one. Options does
// what grpc-go's delegating resolver and proxy dialer would (v1.85): once
// per target it asks the environment, as http.ProxyFromEnvironment does
// for https://target (HTTPS_PROXY or https_proxy; NO_PROXY or no_proxy;
// never for localhost or a loopback address, read when Options is
// called, through golang.org/x/net/http/httpproxy); a dns target that
// goes through a proxy is resolved by the proxy (CONNECT host:port, port
// 443 if the target has none), other targets are resolved here and each
// address is CONNECTed to. The CONNECT carries User-Agent grpc-go/VERSION
// and Basic credentials from the proxy URL's user. The hardened socket is
// the one to the proxy, so a vanished proxy, or a path to it that died,
// is found within c.Bounds(); the proxy's own connection onwards is the
// proxy's business. A refusal is an error wrapping ErrProxy.
//
// Settings gives grpc-go's two proxy dial options their equivalents:
// NoProxy for grpc.WithNoProxy, LocalDNSResolution for
// grpc.WithLocalDNSResolution (those grpc-go options do nothing once a
// dialer is set). unix and unix-abstract targets are dialed directly, as
// grpc-go does. The proxy support lives in the dns and passthrough
// resolvers Options registers for the channel (grpc.WithResolvers); a
// grpc.WithResolvers of your own for those schemes, given after Options,
// replaces them and with them the proxy routing.
//
// # If you also pass grpc.WithKeepaliveParams
//
// grpc-go sets TCP_USER_TIMEOUT itself, to ClientParameters.Timeout (20 s
// if zero), on every connection whose keepalive Time is not infinite, after
// the dial: it overwrites c.UserTimeout. Options passes keepalive with
// Time infinite; grpc-go keeps the last WithKeepaliveParams it is given, so
// a WithKeepaliveParams placed after Options turns pings back on and
// replaces the user timeout, one placed before is overridden. Keepalive
// probes stay as c set them either way, and ForBudget's Count keeps the
// idle bound even without the user timeout.
package grpcdial
