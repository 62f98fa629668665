// Command ghostscan answers an operator's question: is this host leaking
// ghosts? It lists the TCP connections of the current network namespace
// (with -all-netns, of every one a process of the host is in) through
// sock_diag (as ss(8) does), judges each by package tuning's rules
// (tuning.Snapshot), and acts on what it finds. Linux only.
//
// Usage:
//
//	ghostscan [-all-netns] [-port N] [-pid N] [-peer CIDR] [-settings=true] [-conns] [-json] [-limit D]
//	ghostscan -reap [-silent D] [-reap-by HOW] [-yes] [filters]
//	ghostscan -harden BUDGET [-keepalive-only] [-yes] [-record FILE] -pid N | -port N
//	ghostscan -undo [-yes] [-record FILE]
//	ghostscan -watch INTERVAL [-listen ADDR] [filters]
//
// The filters are -port, -pid and -peer; -h prints every flag. The modes:
//
//   - alone, the census: per listening socket and per remote address
//     dialed, how many connections are established, unwatched, sending
//     into silence, stalled or suspect, and the longest the kernel may
//     still take to end one (-conns: each connection; -json: for programs);
//   - -reap ends the connections sending into silence for at least -silent
//     (2 minutes), through SOCK_DESTROY;
//   - -harden sets the options tuning.ForBudget(BUDGET) chooses on the
//     sockets of -pid or -port, listening ones included, and records what
//     it replaced in -record;
//   - -undo puts back what -harden replaced, as the record says;
//   - -watch takes the census every INTERVAL and serves it as Prometheus
//     metrics at http://ADDR/metrics until SIGINT or SIGTERM.
//
// -reap, -harden and -undo are dry runs until -yes.
//
// Exit status: for the census, 0 when no connection is at risk (and for
// -h), 1 when the kernel will never end one or, with -limit, may take
// longer than D, 2 for bad usage or a failed scan; for -reap, -harden and
// -undo, 0 when done or nothing to do, 1 when something is left for the
// operator, 2 for bad usage, a refusal or a failure, with nothing changed;
// for -watch, 0 when stopped by a signal, 2 for bad usage or a failure.
//
// With -json the census is one object: TookMs, NetNS, Sockets, Settings,
// FinWait2Orphans, Groups (the table's rows: Name, Process, Established,
// CloseWait, CloseWaitForMs, Unwatched, Retransmitting, SilentForMs,
// Stalled, Suspected, NeverEnds, MaxEndsInMs, SettingsRead, SlowPath),
// Connections and Listeners. A connection has
// Local, Remote, Listener, PID, Process, Holders, Snapshot, Verdict,
// UnansweredMs, Tries, EndsInMs, SlowPath, Timer, Settings and its
// socket's Inode, Cookie, Interface and FD; a listener has Addr, PID,
// Process, Holders, its socket's, Options and OptionsKnown. Snapshot holds
// tuning.Snapshot's fields: State, RTTMs, RTTVarMs, RTOMs, UnackedSegments,
// UnackedBytes, NotSentBytes, Retransmits, Probes, Backoff,
// SinceDataSentMs, SinceDataReceivedMs, SinceACKMs, PeerWindow, Options,
// Guarded and OptionsKnown; Options holds UserTimeoutMs, KeepAlive
// (Enable, IdleMs, IntervalMs, Count), RTOMaxMs, StallTimeoutMs, PathRTOMs
// and OutageGraceMs. Every duration is in milliseconds, as a number that
// may have a fraction, in a field whose name ends in Ms; EndsInMs is -1
// where the kernel will never end the connection, and no other duration
// is negative. Empty optional fields are left out.
//
// The operator's guide (install, the columns, getting rid of ghosts,
// safety rules, privileges, metrics) is README.md beside this file.
package main
