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
// connection: the 5,000-channel idle fleet in BENCHMARKS.md shows the
// difference.
//
// # Resolvers, credentials, proxies
//
// Any resolver works (dns, passthrough, unix, your own): grpc-go resolves
// the target and hands each address to the dialer. TLS and other transport
// credentials run on top of the hardened socket as usual.
//
// Proxies from the environment (HTTPS_PROXY) are not used: grpc-go skips
// its proxy support whenever a custom dialer is set, and Options sets one.
// This is grpc-go's rule (see WithNoProxy and resolver_wrapper.go), not a
// choice of this package. If you need a proxy, dial it yourself and set
// the options on that socket with tuning.Config.WrapDialContext.
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
