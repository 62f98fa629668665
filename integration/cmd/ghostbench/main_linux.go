package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ghostsock/ghostsock/integration/lab"
)

type options struct {
	smoke            bool
	out              string
	parts            map[byte]bool
	budget           time.Duration
	fleetSizes       []int
	hold             time.Duration
	reapN            int
	reapBudget       time.Duration
	backlog          int // part 4: net.core.netdev_max_backlog for the part, 0 to leave it
	precisionBudgets []time.Duration
	wan              bool
	trials           int
	parallel         int
	count            int
	benchtime        string
	phoneBudgets     []time.Duration
	phoneHold        time.Duration
	phoneChannels    int
	costFleet        int           // part 9: channels of the fleet row
	costFleetHold    time.Duration // part 9: how long the fleet row is measured
	costFleetRare    time.Duration // part 9: the second fleet row's time between RPCs
}

// envGoBench carries parts 2 and 3, run before entering the lab, into the
// process in the lab.
const envGoBench = "GHOSTBENCH_GOTEST"

func main() {
	var o options
	var parts, sizes string
	flag.BoolVar(&o.smoke, "smoke", false, "a few seconds of each part (CI): small N, short holds, 1 run")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "where to write the report")
	flag.StringVar(&parts, "parts", "123457", "which parts to run")
	flag.DurationVar(&o.budget, "budget", 20*time.Second, "part 1: detection budget the pings and ghostsock settings meet")
	flag.StringVar(&sizes, "fleet", "1000,5000,10000", "part 1: channel counts")
	flag.DurationVar(&o.hold, "hold", 60*time.Second, "part 1: how long each fleet idles")
	flag.IntVar(&o.reapN, "reap", 100000, "part 4: connections the server holds")
	// Each held connection sends a keepalive probe every Interval: 100,000
	// at a 5 s budget (1 s) are 100,000 probes a second each way, more
	// than a 2-core VM's veth carries without drops, and live connections
	// were cut. At 30 s (5 s) it is 20,000.
	flag.IntVar(&o.backlog, "netdev-max-backlog", 0, "part 4: set the host's net.core.netdev_max_backlog (each CPU's input backlog, which a veth feeds) to this for the part and restore it after; 0 leaves it")
	flag.DurationVar(&o.reapBudget, "reap-budget", 30*time.Second, "part 4: ForBudget of the server (probes per second = connections / its keepalive interval)")
	precision := "3s,10s"
	flag.StringVar(&precision, "precision-budgets", precision, "part 5: ForBudgets of the trials, comma-separated")
	flag.IntVar(&o.trials, "trials", 50, "part 5: trials of each kind")
	flag.BoolVar(&o.wan, "wan", true, "part 5: the phone paths too (200 ms at 10 s, 600 ms at 30 s)")
	flag.IntVar(&o.parallel, "parallel", 10, "part 5: trials at a time")
	phone := "5s,10s,30s,1m,2m,5m,10m"
	flag.StringVar(&phone, "phone-budgets", phone, "part 8: budgets to price, comma-separated")
	flag.DurationVar(&o.phoneHold, "phone-hold", time.Hour, "part 8: how long every cell is held")
	flag.IntVar(&o.phoneChannels, "phone-channels", 10, "part 8: channels per cell")
	flag.IntVar(&o.costFleet, "cost-fleet", 10000, "part 9: channels of the fleet row, each making one RPC a second")
	flag.DurationVar(&o.costFleetHold, "cost-fleet-hold", 30*time.Second, "part 9: how long each fleet row trial is measured")
	flag.DurationVar(&o.costFleetRare, "cost-fleet-rare", 30*time.Second, "part 9: time between one channel's RPCs in the second fleet row, measured for twice as long")
	flag.IntVar(&o.count, "count", 10, "parts 2 and 3: go test -count")
	role := flag.String("role", "", "internal: run as a child process in this role")
	setting := flag.String("setting", "", "internal")
	n := flag.Int("n", 0, "internal")
	addr := flag.String("addr", "", "internal")
	srcs := flag.String("srcs", "", "internal")
	every := flag.Duration("every", 0, "internal: a fleet client's load, one RPC per channel this often")
	span := flag.Duration("for", 0, "internal: how long a fleet client's load lasts")
	flag.Parse()

	switch *role {
	case "fleet-server":
		fleetServer(*setting, o.budget)
		return
	case "fleet-client":
		fleetClient(*setting, o.budget, *n, *addr, *every, *span)
		return
	case "reap-server":
		reapServer(o.reapBudget, o.reapN)
		return
	case "reap-client":
		reapClient(*addr, *srcs, *n)
		return
	}

	o.parts = map[byte]bool{}
	for i := range len(parts) {
		o.parts[parts[i]] = true
	}
	o.fleetSizes = positives("fleet", sizes, strconv.Atoi)
	o.precisionBudgets = positives("precision-budgets", precision, time.ParseDuration)
	o.phoneBudgets = positives("phone-budgets", phone, time.ParseDuration)
	if o.costFleetRare <= 0 || o.costFleetHold <= 0 || o.costFleet <= 0 {
		fmt.Fprintln(os.Stderr, "ghostbench: -cost-fleet, -cost-fleet-hold and -cost-fleet-rare must be positive")
		os.Exit(2)
	}
	if o.smoke {
		o.precisionBudgets = o.precisionBudgets[:1]
		o.reapBudget = 5 * time.Second // 500 connections: no probe load to speak of
		o.phoneBudgets, o.phoneHold, o.phoneChannels = o.phoneBudgets[:1], 10*time.Second, 2
		o.costFleet, o.costFleetHold, o.costFleetRare = 100, 3*time.Second, 2*time.Second
		o.fleetSizes, o.hold, o.reapN, o.trials, o.parallel, o.count, o.benchtime = []int{50}, 3*time.Second, 500, 3, 3, 1, "100x"
	}

	if !lab.InLab() {
		// Parts 2 and 3 need the module proxy (for benchstat): run them
		// here, then carry them into the lab.
		busy, dial, err := runGoBenchmarks(o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ghostbench:", err)
			os.Exit(1)
		}
		f, err := os.CreateTemp("", "ghostbench-gotest")
		if err == nil {
			err = json.NewEncoder(f).Encode([2]string{busy, dial})
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ghostbench:", err)
			os.Exit(1)
		}
		os.Setenv(envGoBench, f.Name())
		if err := lab.Enter(); err != nil { // returns only on error
			os.Remove(f.Name())
			fmt.Fprintln(os.Stderr, "ghostbench:", err)
			if errors.Is(err, lab.ErrNoNamespaces) {
				fmt.Fprintln(os.Stderr, "Parts 1, 4, 5, 7 and 8 build private networks in network namespaces; run as root or where unprivileged user namespaces are allowed.")
			}
			os.Exit(2)
		}
	}
	if err := runInLab(o); err != nil {
		fmt.Fprintln(os.Stderr, "ghostbench:", err)
		os.Exit(1)
	}
}

func runInLab(o options) error {
	var gotest [2]string
	if path := os.Getenv(envGoBench); path != "" {
		b, err := os.ReadFile(path)
		os.Remove(path)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &gotest); err != nil {
			return err
		}
	}
	type part struct {
		id    byte
		title string
		run   func(options) (string, error)
	}
	sections := []part{
		{'1', "1. Idle fleet: the heartbeat tax", runFleet},
		{'2', "2. Busy path: throughput and latency", func(options) (string, error) { return gotest[0], nil }},
		{'3', "3. Dial and accept cost", func(options) (string, error) { return gotest[1], nil }},
		{'4', "4. Reap at scale", runReap},
		{'5', "5. Precision", runPrecision},
		{'7', "7. Live connections on bad paths", runFalsePositives},
		{'8', "8. What a budget costs a phone", runPhoneCost},
		{'9', "9. What the kit costs per request", runCost},
	}
	var b strings.Builder
	b.WriteString(header(o))
	var failed []string
	for _, p := range sections {
		if !o.parts[p.id] {
			continue
		}
		start := time.Now()
		text, err := p.run(o)
		if err != nil {
			// The other parts still run and are written: a long run is
			// not lost to one failure, which the report and the exit
			// status both show.
			failed = append(failed, fmt.Sprintf("part %c: %v", p.id, err))
			text = fmt.Sprintf("**Failed:** %v\n", err)
		}
		section := fmt.Sprintf("\n## %s\n\n%s", p.title, text)
		fmt.Printf("part %c done in %v%s", p.id, time.Since(start).Round(time.Second), section)
		b.WriteString(section)
	}
	if err := os.WriteFile(o.out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", o.out)
	if failed != nil {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}

func header(o options) string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	if o.smoke {
		b.WriteString("**Smoke run: small N and short holds, to check that the command works. Not figures to quote.**\n\n")
	}
	cmd := "go run ./integration/cmd/ghostbench"
	if len(os.Args) > 1 {
		cmd += " " + strings.Join(os.Args[1:], " ")
	}
	fmt.Fprintf(&b, "Written by `%s` on %s.\n\n", cmd, time.Now().UTC().Format("2006-01-02"))
	var u unix.Utsname
	unix.Uname(&u)
	fmt.Fprintf(&b, "- machine: %d cores (%s), %s memory, Linux %s\n", runtime.NumCPU(), cpuModel(), memTotal(), unix.ByteSliceToString(u.Release[:]))
	grpcVersion := "?"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "google.golang.org/grpc" {
				grpcVersion = d.Version
			}
		}
	}
	fmt.Fprintf(&b, "- %s, grpc-go %s\n", runtime.Version(), grpcVersion)
	b.WriteString("- all traffic inside network namespaces on this machine (parts 1, 4, 5, 7, 8) or over loopback (parts 2, 3); the machine is shared, so single figures are noisy: compare the side-by-side ones\n")
	return b.String()
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func memTotal() string {
	out, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

// positives parses the comma-separated value of flag name, each item
// positive, or exits with status 2 (bad usage).
func positives[T int | time.Duration](name, list string, parse func(string) (T, error)) []T {
	var out []T
	for _, f := range strings.Split(list, ",") {
		v, err := parse(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "ghostbench: bad -%s %q\n", name, list)
			os.Exit(2)
		}
		out = append(out, v)
	}
	return out
}
