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
//	busy   UT > 0        error UT after the first RTO retransmission,   tcp_write_timeout, retransmits_timed_out,
//	                     which follows a tail-loss probe: up to two    tcp_send_loss_probe, tcp_clamp_rto_to_user_timeout
//	                     RTOs after the first lost byte
//	busy   0             tcp_retries2 backoff: past the 924.6 s        retransmits_timed_out, tcp_model_timeout
//	                     threshold, at the next RTO expiry (up to
//	                     1,044.6 s with the default of 15)
//	idle   UT > 0        first probe time Idle+k*Interval, k >= 1,     tcp_keepalive_timer
//	                     at which silence >= UT; Count ignored
//	idle   0             Idle + Count*Interval                         tcp_keepalive_timer
//	idle   keepalive off never
//	shut   UT > 0        UT after the first zero-window probe, even    tcp_probe_timer, tcp_ack_probe
//	window               if the live peer answers every probe; the
//	                     clock survives partial reopenings
//	shut   guarded       never while the peer answers; a silent peer   the window guard (below)
//	window               within GuardBound
//
// Every timer fires late by up to one timer-wheel granularity: at most an
// eighth of the interval it was armed for, plus a jiffy (kernel/time/
// timer.c files timers in levels of 8^n jiffies). A 9 s keepalive idle can
// fire 256 ms late at HZ=250; a 200 ms RTO a few milliseconds.
//
// One rule is not about dead peers but matters for live ones: with a user
// timeout, a window that stays shut counts too (tcp_probe_timer). A peer
// that is alive but stops reading for UT or longer has its writer's
// connection ended, although its kernel answers every zero-window probe.
// Worse, the kernel's clock for it (icsk_probes_tstamp) restarts only when
// the window reopens far enough for the whole head of the queue
// (tcp_ack_probe), or when a probe timer finds data in flight: a reader
// that pauses for less than UT and then reads slowly, reopening the window
// a little at a time, is cut on the old clock (UT 1 s: a 0.6 s pause, then
// 24 KiB every 150 ms, cut about 1.5 s after the writes began; the control
// in TestGuardSurvivesPartialReopenings). gRPC and HTTP/2 are immune, since
// their transports keep reading the socket and apply flow control per
// stream; raw TCP and HTTP/1.1 are not, which is why Listen, WrapListener
// and package httptransport guard by default.
//
// A busy connection survives an outage only if a retransmission reaches
// the peer after the outage ends and before the user timeout runs out.
// After the first lost byte the kernel sends a tail-loss probe (2 SRTT
// later with several segments in flight, up to one RTO with one), its
// first RTO retransmission one RTO after the probe, which starts the user
// timeout's clock, and then retransmissions whose interval doubles; the
// abort comes UT after that first RTO retransmission (Retransmissions).
// The schedule is knife-edged: with UT 3 s and an RTO of exactly 200 ms
// the fourth retransmission leaves at 3.2 s, just ahead of the deadline;
// with 215 ms it would come after it, and the last regular one leaves at
// 1.7 s. OutageSurvived gives the figure that holds over a LAN's RTOs (200
// to 300 ms): 1.5 s for UT 3 s, 6.2 s for 10 s. It is a guarantee, not a
// prediction of loss: the clamped last timer often fires a hair before
// the deadline on the kernel's microsecond clock and sends one more
// retransmission, and in the lab (RTO 216 ms) UT 3 s survived 2.1 and
// 2.4 s outages that way. The far side can end it first: its own keepalive
// does not count the retransmitted duplicates it receives as traffic
// (they are dropped before tcp_ack), so with keepalive and UT 3 s on both
// ends the same outages ended the connection from the reader's side, with
// a reset. RTOMax (TCP_RTO_MAX_MS, Linux 6.15+) caps the doubling, so
// that retransmissions keep coming and the guarantee approaches UT: 2.4 s
// for 3 s and 9.4 s for 10 s with a 1 s cap, proven at 0.5, 0.7 and 0.8
// of UT (TestOutageWithRTOCap). No connection outlives an outage longer
// than its user timeout, and ForBudget(d) keeps UT below d (2 s for 3 s),
// so keep outages in mind when choosing d.
//
// Two consequences surprise people. With a user timeout, an idle connection
// is not ended before one probe went unanswered, so a UT shorter than Idle
// ends it at Idle+Interval, not at UT. And Count does nothing while a user
// timeout is set: any answer resets the silence, and UT alone decides.
// Measured on a 6.x kernel: UT 4 s, Idle 2 s, Interval 1 s, Count 10 ended
// at 4.05 s; UT 1 s, Idle 3 s, Interval 1 s at 4.2 s; no UT, Idle 2 s,
// Interval 1 s, Count 3 at 5.1 s. Bounds gives 4 s, 4 s and 5 s. A busy
// connection's user timeout runs from its first RTO retransmission
// (tcp_retransmit_skb sets retrans_stamp then; the tail-loss probe before
// it does not), so it ends up to two RTOs after UT: 3.22 s for UT 3 s when
// several segments were in flight (a probe at 2 SRTT), 3.41 s when one
// was (the probe waits 200 ms more for a delayed ACK). Bounds reports UT;
// measured times lie up to two RTOs and a timer's slack after it.
//
// # Writers that stream
//
// The busy rule above assumes that the first RTO comes one RTO after the
// first lost byte. It does not for a writer that keeps sending new data:
// the RTO shares one timer slot with the tail-loss probe, every send of
// new data re-arms that slot as a probe about 2 SRTT ahead
// (tcp_schedule_loss_probe, replacing the pending RTO), and a probe that
// finds the RTO overdue re-arms it only a jiffy ahead, where the next new
// data replaces it again. So the first RTO, and with it the user timeout's
// clock, waits until the writer pauses for longer than a probe and two
// jiffies (10 to 12 ms at HZ=250) or until no new data can leave: a full
// congestion window, peer window or send buffer, all of which an earlier
// burst grows and none of which has a per-socket cap (the control cell of
// TestStreamingWriter, a bare *net.TCPConn, logs how far past its bound
// such a writer's error comes). Shorter RTOs, an RTO
// cap or a lower user timeout do not help (the clock has not started);
// turning tail-loss probes off is a sysctl, for the whole host.
//
// What helps is to stop new data once the peer is silent, and a Conn does
// (the send hold): before a write, at most once every 10 ms, it reads
// TCP_INFO (none within 200 ms of a look that found nothing in flight),
// and while data has been in flight for the path's current RTO and
// Config.OutageGrace, nothing has been heard for as long and the kernel
// has not yet
// retransmitted on a timeout, the write waits, and the Conn's other
// writes with it. With nothing new to send, the kernel's timer plays out
// as for a writer that stopped: a tail-loss probe about 2 SRTT later (none
// if one is out already), then the RTO one RTO after it
// (tcp_send_loss_probe re-arms it from the probe). The first RTO thus
// comes at most two RTOs, the grace, a probe and the 10 ms check after
// the peer's last ACK, within Bounds' allowance of a probe and an RTO each up to
// LANRTOMax on a LAN (and the grace, which Bounds adds); the busy rule, Bounds and GuardBound hold, and the
// error is still the kernel's ETIMEDOUT (TestStreamingWriter logs each
// cell against its bound). The write goes on at the peer's next ACK, at the
// first RTO retransmission (the clock then runs, and in loss recovery no
// new data leaves anyway), at its deadline (one set on the Conn), at
// Close, and at the latest when that first RTO is due (two RTOs and two
// checks after the hold began), whatever it could not see. A live peer
// makes a write wait only when its ACKs are a whole RTO late, when the
// kernel itself treats the data as lost; the age of the flight counts too,
// so that the first writes after an idle, whose last ACK is as old as the
// idle, do not wait for the first new ACK. An idle connection costs
// nothing; each writer a clock read and an atomic load per write and at
// most a hundred TCP_INFO reads a second. ReadFrom (sendfile, splice)
// hands the kernel a regular file 4 MiB at a time, another descriptor (a
// socket, a pipe) 64 KiB at a time, a socket no more than it holds once it
// holds something (it waits for its source outside the guard), and looks
// between chunks: a pipe that trickles faster than a probe interval can
// postpone the RTO by at most one chunk's bytes, in as many segments as
// its reads make. A
// reader in user space goes through Write, which looks before every
// write; so does io.Copy from an *os.File, whose sendfile finds no poll
// descriptor behind the Conn's SyscallConn. HeldWrites counts the waits.
// Writes that bypass the Conn (through NetConn or File), and the bare
// *net.TCPConn of Dialer or Control, have no hold: for them the busy bound
// holds only for writers that pause for a probe interval or fill the
// window, and a faster streaming writer can exceed it by its window's
// segments times its write period. TestStreamingWriter proves the hold on
// guarded and unguarded Conns, for Write from one goroutine or two and for
// io.Copy of a trickling reader.
//
// The hold has a price on a path with short outages (a handover, a roam):
// a bare socket's new data, lost in the outage, draws SACKs as soon as it
// ends and recovers by fast retransmission with its window kept, where a
// held stream waits for the RTO retransmission and starts again from a
// window of one. Config.OutageGrace lets writes go on for that much
// longer into a silence, and Bounds counts it: a stream through outages
// shorter than the grace recovers as a bare socket does
// (TestHoldThroughShortOutages; BENCHMARKS.md, part 10).
//
// # Paths longer than a LAN
//
// The busy rule counts a tail-loss probe and a first RTO, and both grow
// with the path: the probe waits 2 SRTT, and Linux's RTO is SRTT plus the
// larger of four mean deviations and 200 ms (tcp_rtt_estimator,
// tcp_set_rto), three RTTs after the handshake's single sample
// (RTOForRTT). Bounds takes each as up to PathRTO, a LAN's 300 ms unless
// the Config says otherwise; a phone 600 ms away has an RTO near 1.8 s
// after its handshake. On such a path a writer also goes on sending until
// the send hold starts, an RTO (and OutageGrace) after the last ACK, and
// each send pushes the probe 2 SRTT out again, so a Config with PathRTO set counts the
// hold's start and that wait too (up to 2/3 PathRTO: SRTT is at most a
// third of it). ForBudget(10s), whose user timeout is 8 s, has a busy
// bound of 14 s at PathRTO 1.8 s (ExampleForBudgetOnPath). The idle rule
// does not depend on the path: keepalive counts from the last segment
// received.
//
// So a Config states its path. ForBudgetOnPath(d, rtt) keeps ForBudget's
// keepalive idle and interval (its count at most the probes the user
// timeout allows), sets PathRTO to RTOForRTT(rtt) and cuts the user timeout
// until the busy bound on that path fits d. A path too slow for d, one
// that would leave a user timeout under three of its RTOs (one lost
// retransmission and its backoff would then end a live connection), is
// refused with an error naming the smallest budget that fits. Past the
// handshake the kit watches each connection against its Config: the first
// time an observed connection's RTO before backoff exceeds PathRTO, at a
// write that samples TCP_INFO for the send hold (the first write's sample
// shows the handshake's RTO), its
// Observers get EventSlowPath; Snapshot.SlowPath says the same, and
// Snapshot.EndsIn counts with the connection's own RTO. The kit does not
// move a connection's user timeout on its own: the guard holds that
// option while data is queued, and an estimator's sample is no contract;
// the budget is the Config's, and the report says when a path breaks it.
// TestPhonePaths measures it over the lab's phone-grade link (delay,
// jitter, lab.NewPath) at 50, 200 and 600 ms.
//
// ForBudget chooses the fields together so that both bounds meet one figure
// (an SLA in, consistent values out); the integration package proves the
// bounds on a real kernel with peers that vanish in network namespaces.
//
// # Lean connections and middleboxes
//
// Lean turns keepalive off on a client, so that an idle one sends nothing
// and its server, which probes, does the finding. A lean client that waits
// on its peer (a response, a server stream) would then never learn that
// the peer vanished: it sends nothing, so neither rule runs. Conn.Awaiting
// turns the Config's keepalive schedule on while a wait is marked, and
// off again after: such a wait ends within AwaitBound, the idle bound of
// that schedule, and an unmarked idle connection still sends nothing.
// grpcdial.Options marks every RPC in flight. An HTTP client of package
// httptransport is not marked: it learns of a vanished server when it next
// sends (the busy bound).
//
// A middlebox that forgets idle flows (a cloud load balancer after 4 to 10
// minutes, a NAT) ends a connection whose keepalive idles past its limit:
// the next packet is dropped or reset. ForBudgetWithIdleLimit(d, limit)
// keeps keepalive's idle and interval under the limit within the same
// worst cases (IdleLimitAWSNLB, IdleLimitAzureLB, IdleLimitGCPCloud name
// the common ones); it costs more probes, one per interval, and
// TestMiddleboxIdleLimit shows a flow kept with it and lost without.
//
// # Where the options go
//
// Dialer sets them on every socket it creates, before connect(2). Listen
// sets them on the listening socket; Linux copies them to every accepted
// socket, so accepting costs no system call, and guards what it accepts.
// WrapListener sets them on each connection an existing listener accepts.
// Apply sets them on a connection already open, through *tls.Conn, and on
// the kit's own *Conn is a reload. Read returns what the kernel actually
// holds. Every entry point validates the Config once, before any socket is
// touched; the ones that cannot return an error (Dialer, WrapListener)
// return it from the first dial or accept.
//
// # One path for every connection
//
// Every entry point hands its connection to one function, which sets the
// options, guards where the guard applies and observes where an Observer
// is set, and which recognises a connection the kit already handled, at
// any depth of the NetConn chain (conn.go says how). So the entry points
// compose: c.WrapListener(c.Listen(...)), httptransport.Harden over New,
// c.DialFunc(c.DialFunc(nil)) are one layer each time, one *Conn per
// socket, one guard, one opened and one ended event per Observer. Two
// different Configs layered mean what Apply means: the outer one, the last
// applied, sets the options and the guard's timings; a guard placed by any
// layer stays (none is ever taken off a connection that may be writing);
// and each layer's Observer, if new to the connection, sees it open and
// end. A wrapper the kit did not make is never passed silently: its
// socket gets the options where it can be reached, and where it cannot,
// or where the guard would have to sit beneath it, the connection is
// refused with a *WrapperError that names the wrapper and the fix, a
// temporary error from Accept.
//
// # The window guard
//
// Listen, WrapListener, DialFunc and package httptransport's client guard their
// connections by default (GuardListener, GuardDialContext and Guard do it
// on request; NoGuard opts out): a live peer that stops reading keeps its
// connection for as long as it answers probes, a peer that vanishes is
// still found within GuardBound, and with StallTimeout a live peer that
// keeps the window shut is cut within StallBound.
//
// Why this mechanism. The first guard raised TCP_USER_TIMEOUT while the
// window was shut, by its own estimate of the kernel's zero-window clock.
// That clock cannot be read, and it outlives partial reopenings and even
// a queue that drains with data in flight, so no estimate is safe:
// measured, a live reader that paused 2.5 s and then read 24 KiB every
// 150 ms was cut at 3.5 s (UT 1 s). A per-listener sweep has the same
// blind spot and costs a pass over every connection. What is safe is to
// take the rule away while the peer answers: a guarded connection holds
// TCP_USER_TIMEOUT at 0 while data it wrote is queued, so no kernel clock,
// stale or not, can end it; the guard caps the probe backoff with
// TCP_RTO_MAX_MS (UserTimeout/8, at least 1 s) so that a live paused peer
// answers a probe at least that often; and it sets the configured timeout
// back once the peer has been silent (with the window shut, four probes
// in a row unanswered: a lossy path's live peer loses one now and then,
// never four) or has stalled past StallTimeout. The kernel then ends the
// connection on its own clocks: within Bounds' busy figure, or one capped
// interval after the verdict (GuardBound, longer than the busy figure
// below a budget of 7 s). Idle, the socket holds the configured
// timeout again, so Bounds' idle rule holds unchanged.
//
// Costs: an idle connection nothing (the guard is disarmed); a write two
// atomic additions, and one setsockopt when it arms the guard and one when
// it rests again, half a user timeout after a look finds its queue
// emptied and nothing written since (within a user timeout and a half of
// the last write, from 2 s up; sooner where a user timeout of 0 would lengthen the idle
// bound: before keepalive's first probe), so that requests coming more
// often than that arm it once; an armed connection one TCP_INFO read 10 ms after the
// arming, then at doubling intervals up to one every UserTimeout/8. An
// audit of the socket (ghostscan, Read) while it is armed reads a user
// timeout of 0; Inspect reports the configured one.
// Zero-copy stays: Conn keeps ReadFrom and WriteTo, and io.Copy(conn, *os.File)
// reaches sendfile through ReadFrom (the guarded SyscallConn hides the poll
// descriptor that would let *os.File's WriteTo go round the guard). A
// Conn dropped without Close is collected, its socket closed and its end
// reported (Event.Dropped). On kernels before 6.15 the cap is missing:
// probes back off to 120 s, the guard waits for two unanswered ones, and a
// peer that vanishes during a long pause can take minutes to be found.
// Proven over loopback (TestGuardSurvivesPartialReopenings,
// TestGuardSendfile, TestGuardDroppedConnIsCollected, each failing on the
// first guard) and in the integration package (TestDefaultsKeepPausedReaders,
// TestDefaultsStillDetectVanishedReaders, TestStallCap).
//
// # Seeing what the kernel does
//
// Three tools answer the questions the kit raises once it is on: which of
// my connections are ghosts, why did this one end, and how many ended so.
//
// Inspect takes a Snapshot of one connection (TCP_INFO, SIOCOUTQ and the
// options in force, on a conn, through *tls.Conn, or on a RawConn).
// Snapshot.Verdict judges the peer by the kernel's evidence: Suspected if
// retransmissions or probes go unanswered twice in a row, WindowStalled if its window
// stays shut while it answers, Unwatched if idle with keepalive off (the
// kernel can never end it), Ended, or Alive. Snapshot.EndsIn is the
// longest the kernel may still take to end it if the peer is silent from
// now on, by this package's rules: what Bounds says, less what the
// kernel's clocks have already run. The rules need no system call, so the
// ghostscan command applies the same ones to a census of a whole host
// read through sock_diag.
//
// Classify says why a connection ended from the error the application
// saw, through net/http's wrapping and grpc-go's status (which keeps only
// the error's text): CauseSilentPeer for ETIMEDOUT (and EHOSTUNREACH or
// ENETUNREACH, which a kernel may report when ICMP was the last word),
// CauseReset, CauseRefused, CauseClosed, CauseOther (a deadline the
// application set is never a silent peer). Where the kit holds the socket
// at the error, it reads the kernel's state there and tells the cases
// apart: CauseReapedIdle (keepalive found it), CauseReapedBusy (data went
// unacknowledged), CauseWindowStall (a live reader cut: by StallTimeout,
// or unguarded by the zero-window rule, whose abort leaves the peer's
// last window at 0 with at most one probe out). The kernel purges its
// queue when it aborts, zeroing the segment count, so busy is judged on
// the bytes written and never acknowledged, which survive.
//
// Config.Observer is told of every connection the entry points open and
// of how each ends, once: at the first Read or Write error after which
// the socket is closed in the kernel, or at Close (where an error nobody
// read is still taken from SO_ERROR). Nil, the default, changes nothing:
// no wrapper, no cost. Set, it costs a few microseconds per connection
// and one TCP_INFO read per end by an error, and no goroutine; package
// tuning/ghostmetrics records the events as OpenTelemetry metrics, and
// NewObserver takes a plain function for everyone else. A reap reaches
// the Observer when the application's read or write sees it: every
// server and client the kit adapts reads its connections all the time.
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
