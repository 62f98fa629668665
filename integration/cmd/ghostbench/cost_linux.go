package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/integration/testsvc"
	"github.com/ghostsock/ghostsock/tuning"
)

// Part 9: what the kit costs per request, side by side with stock sockets
// in one process over loopback: both ends through the kit's default entry
// points (Listen and DialFunc, so guarded and held), against net.Listen and
// net.Dial. Trials alternate kit and stock; each row gives both medians
// and the median and range of the per-pair ratio, so that the machine's
// drift shows as spread rather than as a difference.

// costWork is one row's work with the kit's Config, or stock with nil; it
// returns how many units it did (round trips, bytes, requests).
type costWork struct {
	name, unit string
	perUnit    bool // CPU per unit (lower is better); else units per second
	run        func(c *tuning.Config, o costSize) (int, error)
	slow       bool          // a request every 100 ms: fewer per trial
	grace      time.Duration // the kit's Config WithOutageGrace this
}

// costSize is how much work a trial does.
type costSize struct {
	requests int           // sporadic rows: round trips per trial
	span     time.Duration // throughput rows: how long a trial runs
	start    func()        // the work calls it once set up: the clocks start
}

func costRows() []costWork {
	every100 := onPair(sporadic(100 * time.Millisecond))
	return append([]costWork{
		{name: "64 B request and answer, one every 15 ms", unit: "µs CPU per round trip", perUnit: true, run: onPair(sporadic(15 * time.Millisecond))},
		{name: "64 B request and answer, one every 100 ms", unit: "µs CPU per round trip", perUnit: true, run: every100, slow: true},
		{name: "the same, the kit `WithOutageGrace(1s)`", unit: "µs CPU per round trip", perUnit: true, run: every100, slow: true, grace: time.Second},
		{name: "64 B request and answer, back to back", unit: "round trips per second", run: onPair(backToBack)},
		{name: "256 B writes streamed", unit: "MB per second", run: onPair(streamed)},
	}, protoRows()...)
}

// onPair runs work on a fresh connected pair, through the kit or stock.
func onPair(work func(client, server net.Conn, o costSize) (int, error)) func(c *tuning.Config, o costSize) (int, error) {
	return func(c *tuning.Config, o costSize) (int, error) {
		client, server, closeAll, err := costPair(c)
		if err != nil {
			return 0, err
		}
		defer closeAll()
		o.start()
		return work(client, server, o)
	}
}

func roundTrip(c net.Conn, b []byte) error {
	if _, err := c.Write(b); err != nil {
		return err
	}
	_, err := io.ReadFull(c, b)
	return err
}

func sporadic(every time.Duration) func(client, server net.Conn, o costSize) (int, error) {
	return func(client, server net.Conn, o costSize) (int, error) {
		go testsvc.Answer(server, server, 64)
		b := make([]byte, 64)
		next := time.Now()
		for i := range o.requests {
			next = next.Add(every)
			time.Sleep(time.Until(next))
			if err := roundTrip(client, b); err != nil {
				return i, err
			}
		}
		return o.requests, nil
	}
}

func backToBack(client, server net.Conn, o costSize) (int, error) {
	go testsvc.Answer(server, server, 64)
	b := make([]byte, 64)
	n := 0
	for end := time.Now().Add(o.span); time.Now().Before(end); n++ {
		if err := roundTrip(client, b); err != nil {
			return n, err
		}
	}
	return n, nil
}

func streamed(client, server net.Conn, o costSize) (int, error) {
	got := make(chan int64, 1)
	go func() { n, _ := io.Copy(io.Discard, server); got <- n }()
	b := make([]byte, 256)
	for end := time.Now().Add(o.span); time.Now().Before(end); {
		if _, err := client.Write(b); err != nil {
			return 0, err
		}
	}
	client.(interface{ CloseWrite() error }).CloseWrite()
	return int(<-got), nil
}

// costPair connects a client and a server over loopback, through the kit
// (c's Listen and DialFunc) or stock.
func costPair(c *tuning.Config) (client, server net.Conn, closeAll func(), err error) {
	listen, dial := net.Listen, net.Dial
	if c != nil {
		ln := c.Listen
		listen = func(network, addr string) (net.Listener, error) { return ln(context.Background(), network, addr) }
		d := c.DialFunc(nil)
		dial = func(network, addr string) (net.Conn, error) { return d(context.Background(), network, addr) }
	}
	l, err := listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() { s, _ := l.Accept(); accepted <- s }()
	client, err = dial("tcp", l.Addr().String())
	if err != nil {
		return nil, nil, nil, err
	}
	server = <-accepted
	if server == nil {
		client.Close()
		return nil, nil, nil, fmt.Errorf("accept failed")
	}
	return client, server, func() { client.Close(); server.Close() }, nil
}

// processUsage is the CPU time this process has used, user and system,
// and its context switches, voluntary or not.
func processUsage() (time.Duration, int64) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw
}

// costTrial runs w once on a fresh pair and returns its figure (µs of
// CPU per unit, or units per second) and its context switches per unit.
func costTrial(w costWork, c *tuning.Config, o costSize) (figure, switches float64, err error) {
	var cpu0 time.Duration
	var cs0 int64
	var t0 time.Time
	o.start = func() { cpu0, cs0 = processUsage(); t0 = time.Now() }
	n, err := w.run(c, o)
	cpu1, cs1 := processUsage()
	cpu, took := cpu1-cpu0, time.Since(t0)
	if err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("%s: no work done", w.name)
	}
	units := float64(n)
	if strings.HasPrefix(w.unit, "MB") {
		units /= 1e6
	}
	switches = float64(cs1-cs0) / units
	if w.perUnit {
		return float64(cpu.Microseconds()) / units, switches, nil
	}
	return units / took.Seconds(), switches, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianInterval is a distribution-free interval of at least 95 % for the
// median of what v samples: its k-th smallest and k-th largest values,
// with k the largest for which fewer than k of n fair coin flips come up
// heads with a chance of 2.5 % at most. ok is false below six values.
func medianInterval(v []float64) (lo, hi float64, ok bool) {
	n := len(v)
	k, tail := 0, 0.0 // tail: the chance of fewer than k+1 heads
	for p := math.Pow(0.5, float64(n)); ; {
		if tail+p > 0.025 {
			break
		}
		tail += p
		k++
		p *= float64(n-k+1) / float64(k) // C(n,k)/C(n,k-1)
	}
	if k == 0 {
		return 0, 0, false
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[k-1], s[n-k], true
}

// runCost is part 9.
func runCost(o options) (string, error) {
	c, err := tuning.ForBudget(5 * time.Second)
	if err != nil {
		return "", err
	}
	trials := 16 // as many pairs starting with either arm
	size := costSize{requests: 200, span: 2 * time.Second}
	slow := costSize{requests: 60, span: 2 * time.Second}
	if o.smoke {
		trials, size, slow = 1, costSize{requests: 20, span: 200 * time.Millisecond}, costSize{requests: 5, span: 200 * time.Millisecond}
	}
	// The lab's client host is a namespace of its own: its loopback is up
	// once a lab has been built in it.
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip link set lo up: %w: %s", err, out)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Both ends in one process over loopback, `ForBudget(5s)` through `c.Listen` and `c.DialFunc(nil)` against `net.Listen` and `net.Dial`; %d trials of each, kit and stock alternating, each pair starting with the other than the last, after a garbage collection, each on a fresh pair; CPU is the process's (user and system, getrusage). kit / stock is the median of the per-pair ratios, with a distribution-free 95 %% interval for it (order statistics) and their range.\n\n", trials)
	b.WriteString("| work | unit | stock (median) | kit (median) | kit / stock (median of pairs) | its 95 % interval | range | context switches per unit, stock / kit (medians) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, w := range costRows() {
		s, kc := size, c
		if w.slow {
			s = slow
		}
		if w.grace > 0 {
			if kc, err = c.WithOutageGrace(w.grace); err != nil {
				return "", err
			}
		}
		var kit, stock, ratio, kitSw, stockSw []float64
		for i := range trials {
			// Each pair in turn starts with the other, so that what one
			// trial leaves behind (a heap to collect, a warm cache) favours
			// neither.
			order := []*tuning.Config{nil, &kc}
			if i%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			var got, sw [2]float64
			for j, tc := range order {
				runtime.GC()
				if got[j], sw[j], err = costTrial(w, tc, s); err != nil {
					return "", err
				}
			}
			if i%2 == 1 {
				got[0], got[1], sw[0], sw[1] = got[1], got[0], sw[1], sw[0]
			}
			stock, kit, ratio = append(stock, got[0]), append(kit, got[1]), append(ratio, got[1]/got[0])
			stockSw, kitSw = append(stockSw, sw[0]), append(kitSw, sw[1])
		}
		interval := "-"
		if lo, hi, ok := medianInterval(ratio); ok {
			interval = fmt.Sprintf("%.3f-%.3f", lo, hi)
		}
		fmt.Fprintf(&b, "| %s | %s | %.4g | %.4g | %.3f | %s | %.3f-%.3f | %.3g / %.3g |\n", w.name, w.unit, median(stock), median(kit),
			median(ratio), interval, slices.Min(ratio), slices.Max(ratio), median(stockSw), median(kitSw))
		fmt.Printf("part 9: %s: stock %.4g, kit %.4g %s\n", w.name, median(stock), median(kit), w.unit)
	}
	fl, err := runFleetLoad(o)
	if err != nil {
		return "", err
	}
	b.WriteString(fl)
	return b.String(), nil
}
