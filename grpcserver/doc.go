// Package grpcserver gives a grpc.Server kernel-level detection of clients
// that vanished without FIN or RST, with server pings off.
//
//	c, err := tuning.ForBudget(30 * time.Second)
//	...
//	ln, err := grpcserver.Listen(ctx, "tcp", ":8443", c)
//	...
//	srv := grpc.NewServer(append(grpcserver.Options(c), grpc.Creds(creds))...)
//	srv.Serve(ln)
//
// The listener puts TCP_USER_TIMEOUT and keepalive on every accepted
// socket (on Linux once, on the listening socket). When a client vanishes,
// the kernel ends its connection within c.Bounds(): the server's reads and
// writes fail, grpc-go closes the transport, and the file descriptor, its
// buffers and the goroutines behind it are freed.
//
// # How this meets grpc-go's keepalive
//
// grpc-go's server sets TCP_USER_TIMEOUT on every accepted *net.TCPConn to
// its keepalive Timeout (20 s by default) unless keepalive Time is
// infinite, and its helper loses setsockopt errors. Without Options, that
// 20 s replaces c.UserTimeout on every connection after the handshake.
// Options sets Time infinite, so grpc-go leaves the socket as the listener
// made it; the integration tests read it back after the first RPC.
//
// grpc-go still starts its own keepalive goroutine per connection; with
// Time infinite its timers never fire.
//
// # Migrating clients that still ping
//
// Options accepts client pings down to MinClientPingInterval, with or
// without active streams, so clients that have not yet turned their pings
// off keep working and are never sent GOAWAY too_many_pings.
package grpcserver
