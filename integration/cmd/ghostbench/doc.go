// Command ghostbench measures what the kit costs and what it saves, and
// writes BENCHMARKS.md. One command runs it all:
//
//	go run ./integration/cmd/ghostbench            # the full run, about 20 minutes
//	go run ./integration/cmd/ghostbench -smoke     # a few seconds of each part, as CI runs it
//
// The parts:
//
//  1. Idle fleet, the heartbeat tax: N idle gRPC channels (client and server
//     in separate processes, on the lab's two hosts) held for -hold, for
//     grpc-go pings tuned to the budget, ghostsock, lean and stock grpc-go.
//     CPU from each thread's /proc/PID/task/TID/schedstat, goroutines and
//     heap from the processes, RSS from /proc/PID/status, packets and bytes
//     from the kernel's counters of the lab's link.
//  2. Busy path: gRPC unary and streaming, HTTP/1.1 and HTTP/2 requests,
//     kit against stock (go test -bench in grpcdial and httptransport,
//     compared with benchstat).
//  3. Dial and accept cost, and the window guard's cost per write and per
//     sendfile (go test -bench in tuning, with -benchmem).
//  4. Reap at scale: gRPC servers holding many connections (100,000 by
//     default) whose clients vanish at once, spread over as many server
//     and client processes as the per-process descriptor limit requires,
//     with where packets were lost while the fleet was opened (each host's
//     end of the veth, each CPU's input backlog); -netdev-max-backlog sets
//     the host's net.core.netdev_max_backlog for the part and restores it.
//  5. Precision: repeated idle, one-write and steady-writer detections at
//     budgets 3 s and 10 s (-precision-budgets), and writers that stream
//     after a burst through the kit's Conn (1 MiB then 1 KiB every 1, 5,
//     8, 10 or 20 ms, 4 MiB then every 5 ms, guarded; 1 MiB then every
//     5 ms with NoGuard), each against the window from Earliest() to
//     Bounds() (GuardBound() for a guarded Conn); then idle, steady and
//     the 5 and 10 ms burst writers over the lab's phone-grade link at
//     200 ms (10 s) and 600 ms (30 s) with tuning.ForBudgetOnPath (not
//     with -smoke).
//  7. Live connections on bad paths (BENCHMARKS.md section 6 is not
//     ghostbench's): ForBudget at 5 s and 20 s over the
//     lab's link with 1 % and 5 % random loss, and behind a downlink queue
//     of 1 s and 2 s kept full by a bulk download, busy and idle, each
//     cell's ten connections held for three budgets: how many the kernel
//     cuts although both ends are alive.
//  8. What a budget costs a phone (not in the default -parts: it holds
//     an hour, -phone-hold): gRPC channels at budgets from 5 s to
//     10 min (-phone-budgets) for the pings, ghostsock and lean
//     settings, idle or waiting on an RPC, all at once, each in a lab of
//     its own; the packets and bytes the lab's link carried each way,
//     per channel per hour. Run it with -parts 8.
//  9. What the kit costs per request (not in the default -parts: -parts 9):
//     sporadic 64 B requests every 15 and 100 ms (process CPU per round
//     trip), back to back (round trips per second), 256 B writes streamed
//     (bytes per second), HTTP/1.1 and HTTP/2 over TLS and gRPC unary
//     (requests per second), both ends in one process over loopback,
//     ForBudget(5s) through Listen and DialFunc against stock sockets,
//     16 alternating trials each; then fleets of -cost-fleet gRPC channels
//     making one RPC a second or one every -cost-fleet-rare (CPU per RPC
//     from schedstat), the kit against stock grpc-go and its pings.
//
// Like the demo it builds its own network namespaces (as root, or as a
// normal user where user namespaces are allowed) and sends nothing outside
// them. It runs go test and benchstat (fetched through the Go module
// proxy), so run it from the module's root.
package main
