package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

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
}

// costSize is how much work a trial does.
type costSize struct {
	requests int           // sporadic rows: round trips per trial
	span     time.Duration // throughput rows: how long a trial runs
	start    func()        // the work calls it once set up: the clocks start
}

func costRows() []costWork {
	return append([]costWork{
		{"64 B request and answer, one every 15 ms", "µs CPU per round trip", true, onPair(sporadic(15 * time.Millisecond))},
		{"64 B request and answer, one every 100 ms", "µs CPU per round trip", true, onPair(sporadic(100 * time.Millisecond))},
		{"64 B request and answer, back to back", "round trips per second", false, onPair(backToBack)},
		{"256 B writes streamed", "MB per second", false, onPair(streamed)},
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

// echo answers every 64 B request on c with 64 B, until c ends.
func echo(c net.Conn) {
	b := make([]byte, 64)
	for {
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		if _, err := c.Write(b); err != nil {
			return
		}
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
		go echo(server)
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
	go echo(server)
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

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// costTrial runs w once on a fresh pair and returns its figure: µs of
// CPU per unit, or units per second.
func costTrial(w costWork, c *tuning.Config, o costSize) (float64, error) {
	var cpu0 time.Duration
	var t0 time.Time
	o.start = func() { cpu0, t0 = processCPU(), time.Now() }
	n, err := w.run(c, o)
	cpu, took := processCPU()-cpu0, time.Since(t0)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: no work done", w.name)
	}
	if w.perUnit {
		return float64(cpu.Microseconds()) / float64(n), nil
	}
	if strings.HasPrefix(w.unit, "MB") {
		return float64(n) / took.Seconds() / 1e6, nil
	}
	return float64(n) / took.Seconds(), nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// runCost is part 9.
func runCost(o options) (string, error) {
	c, err := tuning.ForBudget(5 * time.Second)
	if err != nil {
		return "", err
	}
	trials := 7
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
	fmt.Fprintf(&b, "Both ends in one process over loopback, `ForBudget(5s)` through `c.Listen` and `c.DialFunc(nil)` against `net.Listen` and `net.Dial`; %d trials of each, kit and stock alternating, each on a fresh pair; CPU is the process's (user and system, getrusage). kit / stock is the median of the per-pair ratios, with their range.\n\n", trials)
	b.WriteString("| work | unit | stock (median) | kit (median) | kit / stock (range) |\n| --- | --- | --- | --- | --- |\n")
	for i, w := range costRows() {
		s := size
		if i == 1 {
			s = slow
		}
		var kit, stock, ratio []float64
		for range trials {
			st, err := costTrial(w, nil, s)
			if err != nil {
				return "", err
			}
			k, err := costTrial(w, &c, s)
			if err != nil {
				return "", err
			}
			stock, kit, ratio = append(stock, st), append(kit, k), append(ratio, k/st)
		}
		fmt.Fprintf(&b, "| %s | %s | %.4g | %.4g | %.3f (%.3f-%.3f) |\n", w.name, w.unit, median(stock), median(kit),
			median(ratio), slices.Min(ratio), slices.Max(ratio))
		fmt.Printf("part 9: %s: stock %.4g, kit %.4g %s\n", w.name, median(stock), median(kit), w.unit)
	}
	fl, err := runFleetLoad(o)
	if err != nil {
		return "", err
	}
	b.WriteString(fl)
	return b.String(), nil
}
