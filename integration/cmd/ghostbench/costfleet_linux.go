package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ghostsock/ghostsock/integration/fleet"
)

// The fleet rows of part 9: gRPC channels, each its own connection making
// one unary RPC a second (or one every -cost-fleet-rare, long enough for
// the pings to go out between them), client and server in processes of
// their own on the lab's two hosts, through grpc-go as shipped (stock),
// the kit (grpcdial and grpcserver, ForBudget) and grpc-go's keepalive
// pings tuned to the same budget (part 1's settings).

// fleetLoadTrial is the CPU, client and server, per RPC answered over
// hold, with one RPC every every on each channel, and the RPCs that failed.
func fleetLoadTrial(o options, setting string, every, hold time.Duration) (perRPC time.Duration, failed int64, err error) {
	settle := 3 * time.Second
	f, err := startFleet(o.budget, setting, o.costFleet, "-every", every.String(), "-for", (settle + hold + 10*time.Second).String())
	if err != nil {
		return 0, 0, err
	}
	defer f.stop()
	if _, err := f.client.ask("load", time.Minute); err != nil {
		return 0, 0, err
	}
	// A rare row's channels start over its first period; its hold of two
	// periods still sees each make two RPCs.
	time.Sleep(settle)
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
	time.Sleep(hold)
	cpu1, st1, err := sample()
	if err != nil {
		return 0, 0, err
	}
	n := st1.Requests - st0.Requests
	if n <= 0 {
		return 0, 0, fmt.Errorf("%s: no RPC answered in %v", setting, hold)
	}
	return (cpu1 - cpu0) / time.Duration(n), st1.Failed, nil
}

// runFleetLoad is the fleet rows: for each, trials rounds, the three
// settings in turn.
func runFleetLoad(o options) (string, error) {
	rows := []struct{ every, hold time.Duration }{{time.Second, o.costFleetHold}, {o.costFleetRare, 2 * o.costFleetRare}}
	var b strings.Builder
	fmt.Fprintf(&b, "\nThe fleet rows: %d gRPC channels, each its own TCP connection making one 64 B unary RPC a second, or one every %v, staggered; client and server in processes of their own on the lab's two hosts; CPU of both processes (schedstat) per RPC answered over %v (%v for the second row), after a 3 s settle; %d rounds, the settings in turn. stock = grpc-go as shipped; kit = %s; pings = %s.",
		o.costFleet, o.costFleetRare, o.costFleetHold, 2*o.costFleetRare, fleetTrials(o), mustDesc("ghostsock", o.budget), mustDesc("pings", o.budget))
	var table strings.Builder
	table.WriteString("| µs CPU per RPC | stock (median) | kit (median) | pings (median) | kit / stock (range) | kit / pings (range) |\n| --- | --- | --- | --- | --- | --- |\n")
	failed := int64(0)
	for _, r := range rows {
		line, f, err := fleetLoadRow(o, r.every, r.hold)
		if err != nil {
			return "", err
		}
		table.WriteString(line)
		failed += f
	}
	fmt.Fprintf(&b, " %d RPCs failed in all.\n\n%s", failed, table.String())
	return b.String(), nil
}

func fleetTrials(o options) int {
	if o.smoke {
		return 1
	}
	return 3
}

// fleetLoadRow is one fleet row's line of the table, and the RPCs that
// failed.
func fleetLoadRow(o options, every, hold time.Duration) (string, int64, error) {
	settings := []string{"defaults", "ghostsock", "pings"}
	per := map[string][]float64{}
	var ratio, vsPings []float64
	failed := int64(0)
	for range fleetTrials(o) {
		got := map[string]float64{}
		for _, s := range settings {
			fmt.Printf("part 9: fleet of %d, %s, one RPC every %v each, %v\n", o.costFleet, s, every, hold)
			d, f, err := fleetLoadTrial(o, s, every, hold)
			if err != nil {
				return "", 0, err
			}
			got[s] = float64(d) / float64(time.Microsecond)
			per[s] = append(per[s], got[s])
			failed += f
		}
		ratio = append(ratio, got["ghostsock"]/got["defaults"])
		vsPings = append(vsPings, got["ghostsock"]/got["pings"])
	}
	what := "one RPC a second each"
	if every != time.Second {
		what = fmt.Sprintf("one RPC every %v each", every)
	}
	return fmt.Sprintf("| %d channels, %s | %.1f | %.1f | %.1f | %.3f (%.3f-%.3f) | %.3f (%.3f-%.3f) |\n", o.costFleet, what,
		median(per["defaults"]), median(per["ghostsock"]), median(per["pings"]),
		median(ratio), slices.Min(ratio), slices.Max(ratio), median(vsPings), slices.Min(vsPings), slices.Max(vsPings)), failed, nil
}
