// Command ghostscan answers an operator's question: is this host leaking
// ghosts? It lists the TCP connections of the current network namespace
// through the kernel's sock_diag interface (as ss(8) does, read with
// github.com/vishvananda/netlink), judges each as ghostsock's
// tuning.Snapshot does, and prints per listening socket (and per remote
// address for connections this host dialed):
//
//   - ESTAB: established connections;
//   - UNWATCHED: idle with keepalive off, which the kernel never ends: if
//     their peers vanished, they are ghosts for good;
//   - RETRANSMIT: retransmitting into silence, and the longest silence;
//   - STALLED: data waiting behind a window the peer keeps shut;
//   - SUSPECT: every suspected connection, idle ones probed into silence
//     included;
//   - NEVER and MAX-ENDS: how many the kernel will never end, and the
//     longest it may still take to end one if its peer is gone, by the
//     rules of tuning.Config.Bounds;
//   - SLOW: connections on a path slower than a LAN (their RTO past
//     tuning.LANRTOMax, as tuning.Snapshot.SlowPath judges it): MAX-ENDS
//     counts them with their own RTO, but a tuning.ForBudget Config's
//     Bounds do not hold for them; tuning.ForBudgetOnPath gives a Config
//     for their path.
//
// With -conns it prints every connection: its verdict, when the kernel
// will end it, its RTO (tuning.Snapshot.BaseRTO, marked "slow" past
// tuning.LANRTOMax), and the settings the verdict used. Those are read from the
// process that holds the socket where permissions allow (root, or the same
// user under the ptrace scope): ghostscan duplicates the descriptor with
// pidfd_getfd (Linux 5.6+) and reads TCP_USER_TIMEOUT and the keepalive
// options. Where it cannot, it says so and judges on the kernel's
// defaults: no user timeout, keepalive as the socket's timer shows it,
// timings from net.ipv4.tcp_keepalive_*. The duplicate re-tags the socket
// with ghostscan's cgroup v1 net_cls class id and net_prio index: where
// either controller is in use, ghostscan takes none, says so, and refuses
// -harden and -undo (procsock.Retags). A guarded ghostsock connection
// with data queued holds a user timeout of 0 while its guard watches, so
// from outside it looks unbounded until the guard acts.
//
// Usage:
//
//	ghostscan [-port N] [-pid N] [-peer CIDR] [-settings=true] [-conns] [-json] [-limit D]
//	ghostscan -reap [-silent D] [-yes] [-port N] [-pid N] [-peer CIDR] [-json]
//	ghostscan -harden BUDGET [-keepalive-only] [-yes] [-record FILE] (-pid N | -port N) [-json]
//	ghostscan -undo [-yes] [-record FILE] [-json]
//	ghostscan -watch INTERVAL [-listen ADDR] [-port N] [-pid N] [-peer CIDR] [-settings=true]
//
// # Acting on the census
//
// Without -yes, each action prints what it would do and changes nothing.
//
// -reap ends the connections sending into silence (reclaim.Dead): the
// kernel has retransmitted or probed them at least twice in a row without
// an answer, their oldest data or probe has gone unanswered for at least
// -silent (2 minutes by default, see reclaim.DefaultSilent; a lower bound
// from the kernel's counters, tuning.Snapshot.Unanswered), and nothing
// came from the peer for as long. A connection idle past -silent that has
// just sent a request, or whose first keepalive probe is on the wire, is
// not one of them. Nor is an idle one nothing probes (keepalive off): it
// cannot be told from a quiet live peer, and -harden is the way for it.
// With -yes it takes a second
// census, leaves any connection that answered since, and ends the rest
// through SOCK_DESTROY (what ss -K uses) by each socket's sock_diag cookie,
// so that a socket that took the same addresses since is never ended in
// its place. The kernel sends the peer a RST and the process holding the
// socket gets ECONNABORTED at its next read, write or poll, and frees it.
// It needs CAP_NET_ADMIN in the namespace (root) and a kernel built with
// CONFIG_INET_DIAG_DESTROY.
//
// -harden BUDGET sets the options tuning.ForBudget(BUDGET) chooses (its
// user timeout and keepalive) on the sockets -pid (any process holding
// them) or -port (local or remote, as for the census) picks, listening
// sockets included: a connection
// accepted later inherits them (a server that sets its own options on
// each accepted connection, as Go's net package does for keepalive,
// replaces those it sets). It reads every socket first and changes
// nothing if it cannot read one. Before acting it says how many of the
// connections are window-stalled now: the window guard that keeps a user
// timeout from cutting a live reader that keeps its window shut runs only
// in a process built with ghostsock, so the user timeout cuts such a reader
// once it has been stalled that long. -keepalive-only sets keepalive alone:
// it ends idle ghosts and never a live reader, and leaves a busy ghost to
// the process's own user timeout, or to tcp_retries2. With -yes it first
// records, under a lock, every socket's options, holders and network
// namespace in -record (/run/ghostscan/harden.json by default; a socket
// hardened twice keeps its first record, a connection accepted from a
// hardened listener is recorded with the listener's, a socket already
// holding the options is left out), then sets them and reads them back. It needs ptrace rights over the processes
// (root, or CAP_SYS_PTRACE) for pidfd_getfd.
//
// -undo (also written -harden -undo) puts back what the record says
// -harden replaced, option by option: an option the process has changed
// since is left as the process set it. For a listening socket it also
// puts back the connections accepted from it since, which inherited what
// -harden set, whichever process holds them, in the listener's own
// network namespace wherever -undo runs; their keepalive stays on (its
// schedule put back), since the server may have turned it on itself. It
// reaches a socket through any process holding it. With -yes it removes
// from the record what it put back or found gone (held by no process),
// and keeps, with exit status 1, what it could not put back.
//
// -watch INTERVAL takes the census every INTERVAL and serves the latest
// as metrics in the Prometheus text format at http://ADDR/metrics
// (-listen, 127.0.0.1:9464 by default; :9464 for a scraper on another
// host), through OpenTelemetry's Prometheus exporter, until SIGINT or
// SIGTERM: ghostscan_connections{group, process, state} for each group of
// the census (a listening socket, or a remote address this namespace
// dialed) and each of the states established, unwatched, retransmitting,
// stalled, suspected, never_ending and slow_path (the table's columns);
// ghostscan_ends_in_longest_seconds{group, process}; and
// ghostscan_scan_duration_seconds, ghostscan_scan_sockets and
// ghostscan_scan_errors_total for the census itself. A census that fails
// is counted and logged, and the metrics keep the last one that did not.
// ghostscan is a module of its own so that the exporter and the
// Prometheus client are none of the kit's dependencies: a service that
// imports the kit's packages gets neither in its build nor in its module
// graph, where they could raise the versions it selects.
//
// Exit status of an action: 0 when it is done (or a dry run found nothing
// to do); 1 when something is left for the operator (a dry run found
// ghosts to end or sockets to change, or a ghost or socket could not be
// ended or set); 2 for bad usage, a refusal (no -pid or -port for
// -harden, a process that does not exist, no permission) or a failure,
// with nothing changed.
//
// The module is not published, so @latest cannot fetch it: build it from
// a clone. From the clone's root,
//
//	go install -C integration/cmd/ghostscan .
//
// puts ghostscan in $(go env GOPATH)/bin (or $GOBIN), and
//
//	go run -C integration/cmd/ghostscan . -h
//
// runs it without installing. Run it as root to read every process's
// settings; sudo's PATH seldom holds Go's bin directory, hence
//
//	sudo "$(go env GOPATH)/bin/ghostscan"
//
// and, in the namespace to scan (a container's, of process PID),
//
//	sudo nsenter -n -t PID "$(go env GOPATH)/bin/ghostscan"
//
// Exit status: 0 when no connection is at risk (and for -h); 1 when one
// is: the kernel will never end it (EndsIn never), or, with -limit, may
// take longer than the limit; 2 for bad usage or a scan that failed.
//
// # JSON
//
// With -json it prints the census as one JSON object, every connection
// included: TookMs, Sockets, Groups (the table's rows: Name, Process,
// Established, Unwatched, Retransmitting, SilentForMs, Stalled,
// Suspected, NeverEnds, MaxEndsInMs, SettingsRead, SlowPath) and Connections
// (Local, Remote, Listener, PID, Process, Snapshot, Verdict, EndsInMs,
// SlowPath, Timer, Settings). Snapshot holds tuning.Snapshot's fields: State, RTTMs,
// RTTVarMs, RTOMs, UnackedSegments, UnackedBytes, NotSentBytes,
// Retransmits, Probes, Backoff, SinceDataSentMs, SinceDataReceivedMs,
// SinceACKMs, PeerWindow, Options (UserTimeoutMs, KeepAlive with Enable,
// IdleMs, IntervalMs and Count, RTOMaxMs, StallTimeoutMs, PathRTOMs,
// OutageGraceMs), Guarded and OptionsKnown (Config's other fields, NoGuard, Observer and the like,
// are choices of the code that opens a connection, not a socket's state,
// and are left out).
//
// Every duration has one unit: milliseconds, as a number that may have a
// fraction (RTT 0.062 is 62 µs), in a field whose name ends in Ms. The
// kernel counts most of them in milliseconds; those it counts finer keep
// their precision in the fraction. EndsInMs is -1 where the kernel will
// never end the connection ("never" in the table); no other duration is
// negative. Counts, bytes and windows are plain integers.
package main
