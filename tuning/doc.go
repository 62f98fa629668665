// Package tuning makes the kernel, not the application, notice a TCP peer
// that vanished without FIN or RST: a phone whose battery died, a client
// that moved from Wi-Fi to cellular, a NAT that forgot the flow.
//
// Such a socket stays ESTABLISHED. Idle, it stays so forever unless
// keepalive is on; busy (data sent, not acknowledged) it retransmits for
// 15 to 30 minutes under net.ipv4.tcp_retries2, and keepalive does not run
// while data is unacknowledged. A Config closes both holes on one socket,
// without sysctls, goroutines or application pings:
//
//   - TCP_USER_TIMEOUT (RFC 5482) bounds how long sent data may stay
//     unacknowledged;
//   - SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT probes
//     an idle connection.
//
// # The kernel's rules
//
// Bounds models Linux 6.x (net/ipv4/tcp_timer.c). With the peer gone and
// every packet lost:
//
//	case   user timeout  rule                                          source
//	busy   UT > 0        error UT after the first retransmission       tcp_write_timeout, tcp_clamp_rto_to_user_timeout
//	busy   0             tcp_retries2 backoff from 200 ms: 924.6 s     retransmits_timed_out, tcp_model_timeout
//	idle   UT > 0        first probe time Idle+k*Interval, k >= 1,     tcp_keepalive_timer
//	                     at which silence >= UT; Count ignored
//	idle   0             Idle + Count*Interval                         tcp_keepalive_timer
//	idle   keepalive off never
//	shut   UT > 0        UT after zero-window probing began, even if   tcp_probe_timer
//	window               the live peer answers every probe; with
//	                     Guard only if the peer stops answering,
//	                     within GuardBound (2 UT + 3 RTO)
//
// One more rule is not about dead peers but matters for live ones: with a
// user timeout, a window that stays shut counts too (tcp_probe_timer). A
// peer that is alive but stops reading for UT or longer has its writer's
// connection ended, although its kernel answers every zero-window probe.
// gRPC and HTTP/2 are immune, since their transports keep reading the
// socket and apply flow control per stream; raw TCP and HTTP/1.1 writers
// whose consumer may pause longer than the budget need the window guard.
//
// A busy connection survives a short outage only if a retransmission
// reaches the peer after the outage ends and before UT runs out.
// Retransmissions back off from 200 ms, at 0.2, 0.6, 1.4, 3.0, 6.2, 12.6 s
// and so on after the first loss (tail-loss probes and fresh data shift
// them a little), so the outage surely survived ends before the last of
// those below UT: 1.4 s for UT 3 s, 3.0 s for 4 to 6 s, 6.2 s for 7 to 12 s.
// The integration tests prove a 2 s outage survived with UT 4 s
// (TestSurvivesShortOutageWhileBusy, TestSurvivesShortOutageGRPCStream).
//
// Two consequences surprise people. With a user timeout, an idle connection
// is not ended before one probe went unanswered, so a UT shorter than Idle
// ends it at Idle+Interval, not at UT. And Count does nothing while a user
// timeout is set: any answer resets the silence, and UT alone decides.
// Measured on a 6.x kernel: UT 4 s, Idle 2 s, Interval 1 s, Count 10 ended
// at 4.05 s; UT 1 s, Idle 3 s, Interval 1 s at 4.2 s; no UT, Idle 2 s,
// Interval 1 s, Count 3 at 5.1 s. Bounds gives 4 s, 4 s and 5 s. The kernel
// acts on its timer tick. A busy connection's user timeout runs from its
// first retransmission, not from the first unacknowledged send
// (tcp_retransmit_skb sets retrans_stamp then), so it ends one
// retransmission timeout after UT: at least TCP_RTO_MIN, 200 ms, and more
// on a young connection whose RTT estimate still varies. Bounds reports UT;
// measured times lie up to one RTO after it, never before it. Measured
// busy cells with a 3 s budget end at 3.22 s (RTO 200 ms) or, when the
// last frame of an HTTP/2 conversation was still unacknowledged at the
// vanishing, at 3.41 s (RTO 400 ms).
//
// ForBudget chooses the fields together so that both bounds meet one figure
// (an SLA in, consistent values out); the integration package proves the
// bounds on a real kernel with peers that vanish in network namespaces.
//
// # Where the options go
//
// Dialer sets them on every socket it creates, before connect(2). Listen
// sets them on the listening socket; Linux copies them to every accepted
// socket, so accepting costs nothing extra. WrapListener sets them on each
// connection an existing listener accepts, keeping *net.TCPConn as it is.
// Apply sets them on a connection already open, through *tls.Conn. Read
// returns what the kernel actually holds. Every entry point validates the
// Config once, before any socket is touched; the ones that cannot return
// an error (Dialer, WrapListener) return it from the first dial or accept.
//
// # The window guard
//
// No socket option tells a shut window from a dead peer, so Guard,
// GuardListener and GuardDialContext do it in user space, and only while
// data is queued. A write arms a timer on the connection. Every UT/4 it
// reads TCP_INFO: while the window is shut (nothing in flight, data
// queued) and the peer's last ACK is younger than 5/4 UT plus two RTOs,
// it raises TCP_USER_TIMEOUT so that the kernel's deadline stays at least
// UT/2 ahead; once the window opens it sets UT back, and with nothing
// queued it disarms until the next write. The kernel counts a shut window
// from its first zero-window probe, which user space cannot read; that
// probe always follows the last data segment sent (tcpi_last_data_sent),
// so the guard counts from there. A live reader may then pause for any
// time. A reader that vanishes while paused stops answering probes, the
// guard stops raising, and the kernel ends the connection by GuardBound.
// An idle connection costs nothing; a write costs two atomic additions;
// a connection with data queued one getsockopt per tick. Proven in the
// integration package (TestGuardedZeroWindow) and over loopback
// (TestGuardSurvivesPausedReader, with an unguarded control that dies).
//
// # Platforms
//
//	GOOS     user timeout                     keepalive idle, interval, count
//	linux    TCP_USER_TIMEOUT (ms)            TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT
//	darwin   TCP_RXT_CONNDROPTIME (s)         TCP_KEEPALIVE, TCP_KEEPINTVL, TCP_KEEPCNT
//	windows  TCP_MAXRT (s)                    TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT (10 1709+)
//	freebsd  none                             TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT
//
// What a platform lacks is an error wrapping errors.ErrUnsupported that
// names GOOS and GOARCH, never a silent no-op; Bounds models Linux only.
// No option needs privileges.
//
// # With grpc-go and net/http
//
// grpc-go sets TCP_USER_TIMEOUT itself, to its keepalive Timeout, on every
// connection whose keepalive Time is not infinite: on the server always by
// default (20 s), on the client when keepalive parameters are given.
// Packages grpcdial and grpcserver switch grpc-go's pings off so it leaves
// the socket alone; httptransport does the same for HTTP/2 PING health
// checks. Errors from the kernel reach the caller wrapped with
// os.NewSyscallError: errors.Is(err, syscall.ETIMEDOUT) tells a peer the
// kernel gave up on.
package tuning
