// Package tuning makes the kernel, not the application, notice a TCP peer
// that vanished without FIN or RST: a phone whose battery died, a client
// that moved from Wi-Fi to cellular, a NAT that forgot the flow.
//
// Such a socket stays ESTABLISHED. Idle, it stays so for ever unless
// keepalive is on; busy (data sent, not acknowledged), it retransmits for
// the minutes net.ipv4.tcp_retries2 allows, and keepalive does not run
// while data is unacknowledged. A Config closes both holes on one socket,
// without sysctls, goroutines or application pings:
//
//   - TCP_USER_TIMEOUT (RFC 5482, tcp(7)) bounds how long sent data may
//     stay unacknowledged;
//   - SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT probes
//     an idle connection.
//
// ForBudget chooses them together from one figure, the longest a vanished
// peer may hold a connection; Bounds says what a Config promises. The
// entry points are Listen and WrapListener for servers, DialFunc,
// ConnDialer and Dialer for clients, Apply for a connection already open,
// and Control for a net.Dialer or net.ListenConfig of your own.
//
// This comment is the one place for the kernel's rules the package relies
// on, and for why the window guard and the send hold exist. Each rule
// names the tests that prove it. The tests of package integration build
// private networks in namespaces: run them as root, or as a user where
// unprivileged user namespaces are allowed. Measured figures are in
// BENCHMARKS.md, by part, with the commands that produced them.
//
// # The kernel's rules
//
// Bounds models Linux 6.x (net/ipv4/tcp_timer.c). With the peer gone and
// every packet lost, a connection fails:
//
//	case    user timeout   fails                                        kernel source
//	busy    UT > 0         UT after the first RTO retransmission        tcp_write_timeout,
//	                       (rule 1)                                     retransmits_timed_out
//	busy    0              past RetriesTimeout(tcp_retries2), at the    retransmits_timed_out,
//	                       next RTO expiry                              tcp_model_timeout
//	idle    UT > 0         at the first probe Idle+k*Interval, k >= 1,  tcp_keepalive_timer
//	                       at which the silence reaches UT
//	idle    0              Idle + Count*Interval                        tcp_keepalive_timer
//	idle    keepalive off  never
//	window  UT > 0         UT after the first zero-window probe,        tcp_probe_timer,
//	shut                   though the live peer answers (rule 5)        tcp_ack_probe
//
// Rule 1: a busy connection's user timeout runs from its first RTO
// retransmission (tcp_retransmit_skb sets retrans_stamp then), which
// follows a tail-loss probe (tcp_send_loss_probe: 2 SRTT after the last
// send, or an RTO with one segment in flight). So the error comes up to a
// probe and an RTO after UT. Bounds counts each as up to PathRTO
// (LANRTOMax on a LAN); Earliest is the other end of the window.
//
//	go test ./tuning -run 'TestBounds|TestRetriesTimeout'
//	go test ./integration -run 'TestRawTCP|TestSteadyWriter' -v
//
// Rule 2: with a user timeout, Count does nothing (any answer resets the
// silence, and UT alone decides), and an idle connection is not ended
// before one probe went unanswered, so a UT shorter than Idle ends it at
// Idle+Interval, not at UT. ForBudget sets Count to the probes UT allows,
// so that the idle bound holds even where grpc-go clears the user timeout.
//
//	go test ./tuning -run 'TestBounds|TestForBudget|FuzzForBudget'
//	go test ./integration -run 'TestRawTCP' -v
//
// Rule 3: every kernel timer may fire late by up to an eighth of the
// interval it was armed for, plus a jiffy (kernel/time/timer.c files
// timers in levels of 8^n jiffies), and keepalive's lateness adds up from
// probe to probe. Bounds counts it, so a measured detection lies between
// Earliest and Bounds. The same wheel files the keepalive timers of many
// connections in shared buckets: a host holding N idle connections sends
// their probes in bursts of about N × bucket / Idle (a bucket is the
// timer's granularity: at HZ=250, 32 ms for a 1 s timer, 256 ms for 2 to
// 16 s), shared among the CPUs that hold them. Through a veth (a pod's, the lab's) every packet
// passes the receiving CPU's input backlog, net.core.netdev_max_backlog;
// a burst past it is dropped, each dropped answer is a lost probe, and a
// live connection whose probes go unanswered for a user timeout is cut.
// The package sets nothing host-wide: size the backlog at twice the burst
// or more (the answers come back through the same backlogs), or choose a
// budget whose Idle keeps the burst under it.
// BENCHMARKS.md, part 4, measures it:
//
//	go run ./integration/cmd/ghostbench -parts 4
//
// Rule 4: the handshake is held to the user timeout too: a connect to a
// vanished or unreachable address fails with ETIMEDOUT within UT, where a
// stock one waits for tcp_syn_retries or the dialer's timeout. On 6.18
// the SYN is sent again every second four times (tcp_syn_linear_timeouts),
// then with doubling waits; older kernels double from the first retry. A
// short budget thus gives a connect few tries: retry a failed connect, as
// gRPC channels and connection pools do (BENCHMARKS.md, part 7).
//
//	go test ./integration -run 'TestRawTCP/dial' -v
//
// Rule 5: with a user timeout, a window that stays shut counts too
// (tcp_probe_timer). A live peer that stops reading for UT has its
// writer's connection ended, though its kernel answers every zero-window
// probe. The kernel's clock for it (icsk_probes_tstamp) cannot be read,
// and restarts only when the window reopens far enough for the whole head
// of the queue (tcp_ack_probe): a reader that pauses for less than UT and
// then reads slowly is cut on the old clock. gRPC and HTTP/2 are immune
// (their transports keep reading the socket and apply flow control per
// stream); raw TCP and HTTP/1.1 are not. This rule is why the window guard
// exists (below).
//
//	go test ./integration -run 'TestZeroWindow|TestSurvivesSlowGRPCConsumer' -v
//	go test ./tuning -run TestGuardSurvivesPartialReopenings -v
//
// Rule 6: a busy connection survives an outage only if a retransmission
// reaches the peer after the outage ends and before the user timeout runs
// out. Retransmissions double their interval from the RTO, so the schedule
// is knife-edged: Retransmissions gives it for an RTO, and OutageSurvived
// the outage surely survived over a LAN's RTOs. RTOMax (TCP_RTO_MAX_MS,
// Linux 6.15+) caps the doubling, so that retransmissions keep coming. No
// connection outlives an outage longer than its user timeout, and
// ForBudget(d) keeps UT below d. The far side can end it first: its
// keepalive does not count retransmitted duplicates as traffic (they are
// dropped before tcp_ack).
//
//	go test ./tuning -run 'TestRetransmissions|TestOutageSurvived'
//	go test ./integration -run 'TestSurvivesShortOutage|TestOutageWithRTOCap' -v
//
// Rule 7: both rule 1's probe and RTO grow with the path. Linux's RTO is
// SRTT plus the larger of four mean deviations and 200 ms (tcp_rtt_estimator,
// tcp_set_rto): three round trips after the handshake's single sample
// (RTOForRTT). The idle rule does not depend on the path: keepalive counts
// from the last segment received. So a Config states its path:
// ForBudgetOnPath(d, rtt) sets PathRTO and cuts the user timeout until the
// busy bound on that path fits d, and refuses a path too slow for d (one
// that would leave UT under three of its RTOs, where one lost
// retransmission and its backoff would end a live connection), naming the
// smallest budget that fits. A connection whose RTO grows past PathRTO is
// reported: EventSlowPath to the Observer, Snapshot.SlowPath from Inspect.
//
//	go test ./tuning -run 'TestRTOForRTT|TestForBudgetOnPath|ExampleForBudgetOnPath' -v
//	go test ./integration -run 'TestPhonePaths|TestSlowPathEvent' -v
//
// Rule 8: a keepalive probe carries no new data (its sequence number is
// one below what the peer expects), so it does not reset the peer's
// keepalive timer: both ends probe, each on its own schedule. Lean turns
// keepalive off on one end (a phone) and leaves the probing to the other;
// Conn.Awaiting turns the schedule back on while a wait is marked, and
// grpcdial.Options marks every RPC in flight, so a lean client waiting on
// its server still learns within AwaitBound. An HTTP client of package
// httptransport is not marked: lean, it learns when it next sends.
// BENCHMARKS.md, part 8, counts the packets.
//
//	go test ./tuning -run TestAwaiting
//	go test ./integration -run 'TestGRPCLeanClient' -v
//
// Rule 9: a middlebox that forgets idle flows (a cloud load balancer, a
// NAT) ends a connection whose keepalive idles past its limit: the next
// packet is dropped or reset. Probes are traffic, so a budget shorter
// than the limit keeps its flows; for a longer one,
// ForBudgetWithIdleLimit(d, limit) keeps Idle and Interval under the
// limit within the same worst cases, at the cost of more probes.
//
//	go test ./tuning -run 'TestForBudgetWithIdleLimit|ExampleForBudgetWithIdleLimit' -v
//	go test ./integration -run TestMiddleboxIdleLimit -v
//
// # The window guard
//
// Rule 5 cuts live readers. Listen, WrapListener, DialFunc and package
// httptransport therefore guard their connections (Linux, a UserTimeout,
// NoGuard unset; Guard does it for a connection made some other way): a
// live peer that stops reading keeps its connection for as long as it
// answers probes, a peer that vanishes is still found within GuardBound,
// and with StallTimeout a live peer that keeps the window shut is cut
// within StallBound. Packages grpcserver and grpcdial set NoGuard: HTTP/2
// never shuts the window.
//
// Why this mechanism. The first guard raised TCP_USER_TIMEOUT while the
// window was shut, by its own estimate of the kernel's zero-window clock.
// That clock cannot be read, and it outlives partial reopenings and a
// queue that drains with data in flight, so no estimate is safe. What is
// safe is to take the rule away while the peer answers:
//
//   - while data it wrote is queued, a guarded connection holds
//     TCP_USER_TIMEOUT at 0, so no kernel clock, stale or not, can end it;
//   - it caps the probe backoff with TCP_RTO_MAX_MS (UserTimeout/8, at
//     least 1 s), so that a live paused peer answers a probe that often;
//   - it reads TCP_INFO, soon after the write and then at doubling
//     intervals up to one every UserTimeout/8, and sets the configured
//     timeout back once the peer is silent (with the window shut, four
//     probes in a row unanswered: a lossy path's live peer loses one now
//     and then, not four) or has stalled past StallTimeout. The kernel then
//     ends the connection on its own clocks, within Bounds' busy figure or
//     one capped interval after the verdict: GuardBound, the later of the
//     two, exceeds the busy bound for the smallest budgets;
//   - once nothing is queued it lingers armed (half a user timeout where
//     the idle bound allows), so that requests coming more often arm it
//     once, then holds the configured timeout again: Bounds' idle rule is
//     unchanged, and an idle connection costs nothing.
//
// An audit of the socket from outside (ghostscan, Read) while the guard is
// armed reads a user timeout of 0; Inspect reports the configured one.
// Zero-copy stays: Conn keeps ReadFrom and WriteTo, and io.Copy from an
// *os.File reaches sendfile through ReadFrom. A Conn dropped without
// Close is collected, its socket closed and its end reported
// (Event.Dropped). Before Linux 6.15 the cap is missing: probes back off
// to 120 s, the verdict waits for two unanswered ones, and a peer that
// vanishes during a long pause can take minutes to be found. What a guarded
// write costs is BENCHMARKS.md, parts 3 and 9.
//
//	go test ./tuning/... -run 'TestGuard' -v
//	go test ./integration -run 'TestDefaults|TestStallCap|TestGuard' -v
//
// The earlier guards' defects stay as tests that fail on them: the first
// guard's in TestGuardSurvivesPartialReopenings, TestGuardSendfile and
// TestGuardDroppedConnIsCollected; a verdict on one lost answer, which
// cut live readers on a lossy path, in package integration's
// TestGuardKeepsPausedReadersOnLossyPath.
//
// # Writers that stream
//
// Rule 1 assumes that the first RTO comes one RTO after the first lost
// byte. It does not for a writer that keeps sending new data: the RTO
// shares one timer slot with the tail-loss probe, every send of new data
// re-arms that slot as a probe about 2 SRTT ahead
// (tcp_schedule_loss_probe, replacing the pending RTO), and a probe that
// finds the RTO overdue re-arms it only a jiffy ahead, where the next new
// data replaces it again. So the user timeout's clock waits until the
// writer pauses for longer than a probe, or until no new data can leave (a
// full congestion window, peer window or send buffer, none of which has a
// per-socket cap). A shorter RTO, an RTO cap or a lower user timeout do
// not help (the clock has not started); turning tail-loss probes off is a
// sysctl, for the whole host.
//
// What helps is to stop new data once the peer is silent, and a Conn does:
// the send hold. Before a write, at most once every 10 ms, it reads
// TCP_INFO (none soon after a look that found nothing in flight); while
// data has been in flight for the path's RTO and OutageGrace, nothing has
// been heard for as long, and the kernel has not yet retransmitted on a
// timeout, the write waits, and the Conn's other writes with it. With
// nothing new to send, the kernel's timer plays out as for a writer that
// stopped, and rule 1 and GuardBound hold; the error is still the
// kernel's ETIMEDOUT. The write goes on at the peer's next ACK, at the
// first RTO retransmission, at its deadline, at Close, and at the latest
// when that first RTO is due. A live peer makes a write wait only when
// its ACKs are a whole RTO late, when the kernel itself treats the data as
// lost. ReadFrom (sendfile, splice) hands the kernel bounded chunks and
// looks between them; HeldWrites counts the waits.
//
// Writes that bypass the Conn (through NetConn or File), and the bare
// *net.TCPConn of Dialer or Control, have no hold: for them the busy bound
// holds only for writers that pause for a probe interval or fill the
// window.
//
// The hold has a price on a path with short outages (a handover, a roam):
// a bare socket's new data, lost in the outage, draws SACKs as soon as it
// ends and recovers by fast retransmission with its window kept, where a
// held stream waits for the RTO retransmission and starts again from a
// window of one. OutageGrace (WithOutageGrace) lets writes go on for that
// much longer into a silence, and Bounds counts it. BENCHMARKS.md, part
// 10, has both sides of the trade.
//
//	go test ./tuning/... -run 'TestHold|TestBoundsOutageGrace|TestWithOutageGrace' -v
//	go test ./integration -run 'TestStreamingWriter|TestWritersAfterBurst' -v
//	go test ./integration -run TestHoldThroughShortOutages -v
//
// # One path for every connection
//
// Every entry point hands its connection to one function, which sets the
// options, guards where the guard applies, observes where an Observer is
// set, and recognises a connection the kit already handled at any depth
// of the NetConn chain. So entry points layered or applied twice act once:
// one *Conn per socket, one guard, one opened and one ended event per
// Observer; with two Configs, the last applied sets the options, as Apply
// does. A wrapper the kit did not make is never passed silently: where its
// socket cannot be reached, or the guard would sit beneath it (TLS), the
// connection is refused with a *WrapperError that names the fix.
//
//	go test ./tuning -run 'TestWrapListener|TestApply|TestConnDialer'
//	go test ./internal/composition
//
// # Seeing what the kernel does
//
// Inspect judges one connection by the kernel's evidence (Snapshot.Verdict)
// and says how long the kernel may still take to end it (Snapshot.EndsIn:
// the rules above, less what its clocks have run); the ghostscan command
// applies the same rules to a whole host. Classify says why a connection
// ended, from the error the application saw. Config.Observer is told of
// every connection the entry points open and of how each ends; nil, the
// default, costs nothing. BENCHMARKS.md, part 6, has the costs.
//
//	go test ./tuning -run 'TestVerdictAndEndsIn|TestUnanswered|TestClassify|TestObserver'
//	go test ./integration -run 'TestCountedPerStack|TestGhostscanCensus' -v
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
// names GOOS and GOARCH, never a silent no-op. Bounds models Linux only;
// the guard, the send hold and RTOMax are Linux's. No option needs
// privileges.
//
// # With grpc-go and net/http
//
// grpc-go sets TCP_USER_TIMEOUT itself, to its keepalive Timeout, on every
// *net.TCPConn whose keepalive Time is not infinite: on the server always
// by default, on the client when keepalive parameters are given. Packages
// grpcdial and grpcserver switch grpc-go's pings off, and hand grpc-go a
// *Conn, which it passes over; httptransport switches HTTP/2 PING health
// checks off. Errors from the kernel reach the caller wrapped with
// os.NewSyscallError: errors.Is(err, syscall.ETIMEDOUT) tells a peer the
// kernel gave up on.
package tuning
