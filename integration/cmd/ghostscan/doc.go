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
// timings from net.ipv4.tcp_keepalive_*. A guarded ghostsock connection
// with data queued holds a user timeout of 0 while its guard watches, so
// from outside it looks unbounded until the guard acts.
//
// Usage:
//
//	ghostscan [-port N] [-pid N] [-peer CIDR] [-settings=true] [-conns] [-json] [-limit D]
//
// The module is not published, so @latest cannot fetch it: build it from
// a clone. From the clone's root,
//
//	go install ./integration/cmd/ghostscan
//
// puts ghostscan in $(go env GOPATH)/bin (or $GOBIN), and
//
//	go run ./integration/cmd/ghostscan -h
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
// IdleMs, IntervalMs and Count, RTOMaxMs, StallTimeoutMs, PathRTOMs), Guarded and
// OptionsKnown (Config's other fields, NoGuard, Observer and the like,
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
