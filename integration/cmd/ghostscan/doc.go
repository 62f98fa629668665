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
//     rules of tuning.Config.Bounds.
//
// With -conns it prints every connection: its verdict, when the kernel
// will end it, and the settings the verdict used. Those are read from the
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
// Install it with
//
//	go install github.com/ghostsock/ghostsock/integration/cmd/ghostscan@latest
//
// and run it in the namespace to scan (nsenter -n -t PID ghostscan for a
// container's).
//
// Exit status: 0 when no connection is at risk; 1 when one is: the kernel
// will never end it (EndsIn never), or, with -limit, may take longer than
// the limit; 2 for bad usage or a scan that failed.
package main
