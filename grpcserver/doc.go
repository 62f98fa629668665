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
// infinite, and its helper loses setsockopt errors. Two things keep that
// from replacing c.UserTimeout: Options sets Time infinite, and the
// listener hands out *tuning.Conn, which grpc-go's helper passes over, so
// that a keepalive option of the server's own, in any order, cannot undo
// the user timeout either. The tests read it back after the first RPC.
//
// A server's own keepalive settings (MaxConnectionIdle, MaxConnectionAge,
// MaxConnectionAgeGrace, an enforcement policy) go in Settings, which
// merges them with the kit's: grpc-go keeps only the last KeepaliveParams
// option it is given, so passing both would lose one.
//
// grpc-go still starts its own keepalive goroutine per connection; with
// Time infinite its timers never fire.
//
// # No window guard
//
// Listen and WrapListener set NoGuard, so the connections are unguarded
// *tuning.Conn. The kernel's zero-window rule (a live peer that keeps its
// receive window shut for the user timeout is cut, see package tuning)
// cannot reach an HTTP/2 connection: grpc-go reads each connection in a
// goroutine of its own that never waits for the application, and applies
// flow control per stream and per connection in HTTP/2 frames, so a
// consumer that stops calling Recv shuts its stream's HTTP/2 window while
// the TCP window stays open. Only a process that stops reading altogether
// (stopped by a signal or a debugger) lets it shut, and is then treated as
// gone. The integration tests hold a consumer that stops calling Recv for
// three budgets, and it survives.
//
// # Migrating clients that still ping
//
// Options accepts client pings down to MinClientPingInterval, with or
// without active streams, so clients that have not yet turned their pings
// off keep working and are never sent GOAWAY too_many_pings.
package grpcserver
