// Package integration proves ghostsock on a real Linux kernel. Its tests run
// clients and servers in two network namespaces joined by a veth pair
// (package lab), make one side vanish with blackhole routes, and check that
// the other side sees an error within tuning.Config.Bounds(), not before it,
// and at most one retransmission timeout plus a margin after it, for raw
// TCP, gRPC clients and servers, HTTP/1.1 and HTTP/2 clients and
// http.Server. A control test for each stack shows the same connection
// still ESTABLISHED at three times the budget without the kit.
//
// The test binary re-executes itself in namespaces of its own (lab.Enter):
// as root a new network namespace, as a normal user a new user and network
// namespace, so "go test ./..." needs no sudo where user namespaces are
// allowed. Where they are not, the tests skip and say what to run, except
// with CI=true, where that is a failure. The ip command (iproute2) must be
// installed. No packet leaves the namespaces the tests made.
//
// Each test builds labs of its own (namespaces, links and addresses no
// other test uses) and waits on its own sockets' timers, so the tests run
// in parallel: parallelPerCPU (main_test.go) per CPU unless -parallel says
// otherwise. Two kinds run before them, without them. Those that count or
// set what the whole process shares (descriptors, goroutines, the
// environment) run alone. Those that hold a writer to the busy bound
// (Bounds) run beside their own cells only: the bound assumes the writer
// as the test set it up when the peer vanishes (data in flight, its window
// open, its send hold in time), and a reader or a hold slowed by the other
// tests' load can change that. A guarded writer whose window shut first
// meets the guard's verdict (GuardBound) instead.
//
// Other tests hold the kit to its other promise, never to kill a live
// peer: short outages in busy transfers, readers that pause (for three
// budgets, with the writer guarded by tuning.Guard), long idle periods,
// faults that must surface at once, mixed fleets, leaks.
//
// The demo, cmd/ghostdemo, shows the same on four gRPC pairs side by
// side; cmd/ghostbench measures costs and writes BENCHMARKS.md. Package
// fleet holds the gRPC settings both compare.
package integration
