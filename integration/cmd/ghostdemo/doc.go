// Command ghostdemo shows, in about a minute, what ghostsock is for.
//
// It builds a private network of its own (network namespaces joined by veth
// pairs; as root, or as a normal user where unprivileged user namespaces are
// allowed) and runs four gRPC client/server pairs side by side, each in a
// process of its own:
//
//   - defaults: grpc-go as it ships, no keepalive pings;
//   - pings: grpc-go keepalive pings on both sides, tuned to the budget;
//   - ghostsock: tuning.ForBudget(budget) through grpcdial and grpcserver,
//     pings off;
//   - lean: the same server, and a client with Config.Lean(): only the
//     server probes, so half the probe packets; an idle client learns of
//     a vanished server when it next sends.
//
// Each pair holds a fleet of idle channels, one more idle channel and one
// busy server stream. First every channel idles for -hold, and the demo
// measures what staying ready costs each pair: CPU time of its process and
// packets on its link. Then every server vanishes (blackhole routes: no FIN,
// no RST) and the demo prints a row each time a client notices, until -wait
// has passed, then when each client noticed, or that its socket is still
// ESTABLISHED and how long the kernel would keep it. Its output fits 100
// columns.
//
// Usage:
//
//	go run ./integration/cmd/ghostdemo [-budget 15s] [-wait 45s] [-hold 20s] [-fleet 1000]
package main
