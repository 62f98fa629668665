package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ghostsock/ghostsock/integration/fleet"
)

// The fleet row of part 9: gRPC channels, each its own connection making
// one unary RPC a second, client and server in processes of their own on
// the lab's two hosts, through grpc-go as shipped (stock), the kit
// (grpcdial and grpcserver, ForBudget) and grpc-go's keepalive pings tuned
// to the same budget (part 1's settings).

// fleetLoadTrial is the CPU, client and server, per RPC answered over
// hold, and the RPCs that failed.
func fleetLoadTrial(o options, setting string) (perRPC time.Duration, failed int64, err error) {
	const every = time.Second
	settle := 3 * time.Second
	f, err := startFleet(o.budget, setting, o.costFleet, "-every", every.String(), "-for", (settle + o.costFleetHold + 10*time.Second).String())
	if err != nil {
		return 0, 0, err
	}
	defer f.stop()
	if _, err := f.client.ask("load", time.Minute); err != nil {
		return 0, 0, err
	}
	time.Sleep(settle) // every channel has begun
	procs := [2]*child{f.client, f.server}
	sample := func() (cpu time.Duration, st report, err error) {
		for _, p := range procs {
			c, err := fleet.CPUTime(p.Cmd.Process.Pid)
			if err != nil {
				return 0, st, err
			}
			cpu += c
		}
		st, err = f.client.ask("stats", time.Minute)
		return cpu, st, err
	}
	cpu0, st0, err := sample()
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(o.costFleetHold)
	cpu1, st1, err := sample()
	if err != nil {
		return 0, 0, err
	}
	n := st1.Requests - st0.Requests
	if n <= 0 {
		return 0, 0, fmt.Errorf("%s: no RPC answered in %v", setting, o.costFleetHold)
	}
	return (cpu1 - cpu0) / time.Duration(n), st1.Failed, nil
}

// runFleetLoad is the fleet row: trials rounds, the three settings in turn.
func runFleetLoad(o options) (string, error) {
	settings := []string{"defaults", "ghostsock", "pings"}
	trials := 3
	if o.smoke {
		trials = 1
	}
	per := map[string][]float64{}
	var ratio, vsPings []float64
	failed := int64(0)
	for range trials {
		got := map[string]float64{}
		for _, s := range settings {
			fmt.Printf("part 9: fleet of %d, %s, one RPC a second each, %v\n", o.costFleet, s, o.costFleetHold)
			d, f, err := fleetLoadTrial(o, s)
			if err != nil {
				return "", err
			}
			got[s] = float64(d) / float64(time.Microsecond)
			per[s] = append(per[s], got[s])
			failed += f
		}
		ratio = append(ratio, got["ghostsock"]/got["defaults"])
		vsPings = append(vsPings, got["ghostsock"]/got["pings"])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nThe fleet row: %d gRPC channels, each its own TCP connection making one 64 B unary RPC a second (staggered), client and server in processes of their own on the lab's two hosts; CPU of both processes (schedstat) per RPC answered over %v, after a 3 s settle; %d rounds, the settings in turn. stock = grpc-go as shipped; kit = %s; pings = %s. %d RPCs failed in all.\n\n",
		o.costFleet, o.costFleetHold, trials, mustDesc("ghostsock", o.budget), mustDesc("pings", o.budget), failed)
	b.WriteString("| µs CPU per RPC | stock (median) | kit (median) | pings (median) | kit / stock (range) | kit / pings (range) |\n| --- | --- | --- | --- | --- | --- |\n")
	fmt.Fprintf(&b, "| %d channels, one RPC a second each | %.1f | %.1f | %.1f | %.3f (%.3f-%.3f) | %.3f (%.3f-%.3f) |\n", o.costFleet,
		median(per["defaults"]), median(per["ghostsock"]), median(per["pings"]),
		median(ratio), slices.Min(ratio), slices.Max(ratio), median(vsPings), slices.Min(vsPings), slices.Max(vsPings))
	return b.String(), nil
}
