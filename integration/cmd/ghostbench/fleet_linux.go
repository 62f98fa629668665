package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ghostsock/ghostsock/integration/fleet"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/integration/testsvc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// fleetServer is the child role serving testsvc with a setting on the
// listener passed as fd 3.
func fleetServer(setting string, budget time.Duration) {
	s, err := fleet.Get(setting, budget)
	if err != nil {
		fail(err)
	}
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fail(err)
	}
	srv := grpc.NewServer(s.Server...)
	testsvc.Register(srv)
	go srv.Serve(s.Wrap(ln))
	serve(nil)
}

// fleetClient is the child role holding n channels to addr, each its own
// TCP connection, READY after one RPC. At "load" each channel makes one
// RPC every every, staggered, for span.
func fleetClient(setting string, budget time.Duration, n int, addr string, every, span time.Duration) {
	s, err := fleet.Get(setting, budget)
	if err != nil {
		fail(err)
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, s.Client...)
	ccs, err := fleet.DialReady(addr, n, func(int) []grpc.DialOption { return opts })
	if err != nil {
		fail(err)
	}
	var done, failed atomic.Int64
	serveWith(func(r *report) { r.Requests, r.Failed = done.Load(), failed.Load() }, map[string]func(*report) error{
		"load": func(*report) error {
			if every <= 0 || span <= 0 {
				return errors.New("load needs -every and -for")
			}
			start := time.Now()
			for i, cc := range ccs {
				first := start.Add(every * time.Duration(i) / time.Duration(len(ccs)))
				go requestEvery(testpb.NewTestServiceClient(cc), first, every, start.Add(span), &done, &failed)
			}
			return nil
		},
	})
}

// requestEvery makes one unary RPC at first and every period after it,
// until end, counting those answered and those failed.
func requestEvery(c testpb.TestServiceClient, first time.Time, every time.Duration, end time.Time, done, failed *atomic.Int64) {
	req := &testpb.SimpleRequest{ResponseSize: 64, Payload: &testpb.Payload{Body: make([]byte, 64)}}
	for t := first; t.Before(end); t = t.Add(every) {
		time.Sleep(time.Until(t))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.UnaryCall(ctx, req)
		cancel()
		if err != nil {
			failed.Add(1)
		} else {
			done.Add(1)
		}
	}
}

// fleetRow is one setting at one N.
type fleetRow struct {
	setting string
	n       int
	cpu     [2]time.Duration // client, server, over the hold
	gs      [2]int
	heap    [2]uint64
	rss     [2]int64
	wire    lab.Counters
	hold    time.Duration
}

func runFleet(o options) (string, error) {
	var rows []fleetRow
	for _, n := range o.fleetSizes {
		for _, name := range []string{"pings", "ghostsock", "lean", "defaults"} {
			fmt.Printf("part 1: %s, %d channels, holding %v\n", name, n, o.hold)
			r, err := fleetOnce(o, name, n)
			if err != nil {
				return "", fmt.Errorf("fleet %s %d: %w", name, n, err)
			}
			rows = append(rows, r)
		}
	}
	return fleetTable(o, rows), nil
}

func fleetOnce(o options, name string, n int) (fleetRow, error) {
	row := fleetRow{setting: name, n: n, hold: o.hold}
	f, err := startFleet(o.budget, name, n)
	if err != nil {
		return row, err
	}
	defer f.stop()
	l, client, server := f.lab, f.client, f.server
	time.Sleep(2 * time.Second) // let the dialing's work settle
	procs := [2]*child{client, server}
	var cpu0 [2]time.Duration
	for i, p := range procs {
		if cpu0[i], err = fleet.CPUTime(p.Cmd.Process.Pid); err != nil {
			return row, err
		}
	}
	wire0, err := l.Counters()
	if err != nil {
		return row, err
	}
	time.Sleep(o.hold)
	wire1, err := l.Counters()
	if err != nil {
		return row, err
	}
	row.wire = wire1.Sub(wire0)
	for i, p := range procs {
		cpu, err := fleet.CPUTime(p.Cmd.Process.Pid)
		if err != nil {
			return row, err
		}
		row.cpu[i] = cpu - cpu0[i]
		st, err := p.ask("stats", time.Minute)
		if err != nil {
			return row, err
		}
		row.gs[i], row.heap[i] = st.Goroutines, st.HeapBytes
		if row.rss[i], err = fleet.RSS(p.Cmd.Process.Pid); err != nil {
			return row, err
		}
	}
	return row, nil
}

// aFleet is a lab with a fleet's server and client processes, its
// channels READY.
type aFleet struct {
	lab            *lab.Lab
	client, server *child
}

func (f *aFleet) stop() {
	if f.client != nil {
		f.client.Stop()
	}
	if f.server != nil {
		f.server.Stop()
	}
	f.lab.Close()
}

// startFleet builds a lab and starts setting name's server and a client of
// n channels in it, passing the client clientArgs too.
func startFleet(budget time.Duration, name string, n int, clientArgs ...string) (f *aFleet, err error) {
	l, err := lab.New()
	if err != nil {
		return nil, err
	}
	f = &aFleet{lab: l}
	defer func() {
		if err != nil {
			f.stop()
		}
	}()
	lf, addr, err := l.ListenerFile()
	if err != nil {
		return nil, err
	}
	b := budget.String()
	f.server, err = startChild(name+" server", []string{"-role", "fleet-server", "-setting", name, "-budget", b}, lf)
	lf.Close()
	if err != nil {
		return nil, err
	}
	if _, err := f.server.ask("", time.Minute); err != nil {
		return nil, err
	}
	args := append([]string{"-role", "fleet-client", "-setting", name, "-budget", b, "-n", strconv.Itoa(n), "-addr", addr.String()}, clientArgs...)
	if f.client, err = startChild(name+" client", args); err != nil {
		return nil, err
	}
	if _, err := f.client.ask("", 10*time.Minute); err != nil {
		return nil, err
	}
	return f, nil
}

func fleetTable(o options, rows []fleetRow) string {
	var b strings.Builder
	// CPU in milliseconds per minute of holding.
	perMin := func(d time.Duration, hold time.Duration) float64 {
		return float64(d) / float64(time.Millisecond) * float64(time.Minute) / float64(hold)
	}
	fmt.Fprintf(&b, "Budget %v; settings as in the demo: pings = %s; ghostsock = %s; lean = %s; defaults = grpc-go as shipped (no detection). Each channel is its own TCP connection; client and server are separate processes on the lab's two hosts. Held %v after a 2 s settle. CPU is the sum of the processes' threads' run time from /proc/PID/task/TID/schedstat (nanoseconds); packets and bytes are the kernel's counters of the lab's link, both directions.\n\n",
		o.budget, mustDesc("pings", o.budget), mustDesc("ghostsock", o.budget), mustDesc("lean", o.budget), o.hold)
	b.WriteString("| N | setting | client CPU ms/min | server CPU ms/min | goroutines client / server | heap MiB client / server | RSS MiB client / server | packets/min | KiB/min |\n")
	b.WriteString("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %s | %.1f | %.1f | %d / %d | %.0f / %.0f | %.0f / %.0f | %.0f | %.0f |\n",
			r.n, r.setting, perMin(r.cpu[0], r.hold), perMin(r.cpu[1], r.hold), r.gs[0], r.gs[1],
			mib(r.heap[0]), mib(r.heap[1]), mib(uint64(r.rss[0])), mib(uint64(r.rss[1])),
			float64(r.wire.RxPackets+r.wire.TxPackets)*float64(time.Minute)/float64(r.hold),
			float64(r.wire.RxBytes+r.wire.TxBytes)/1024*float64(time.Minute)/float64(r.hold))
	}
	b.WriteString("\nRatios in the same run (client + server CPU):\n\n")
	b.WriteString("| N | pings / ghostsock CPU | ghostsock − defaults CPU ms/min | ghostsock / pings packets | lean / pings packets |\n| ---: | ---: | ---: | ---: | ---: |\n")
	by := map[string]fleetRow{}
	for _, r := range rows {
		by[fmt.Sprint(r.setting, r.n)] = r
	}
	for _, n := range o.fleetSizes {
		p, g, d, lean := by[fmt.Sprint("pings", n)], by[fmt.Sprint("ghostsock", n)], by[fmt.Sprint("defaults", n)], by[fmt.Sprint("lean", n)]
		cpu := func(r fleetRow) time.Duration { return r.cpu[0] + r.cpu[1] }
		ratio := "∞ (ghostsock: no CPU at all)"
		if cpu(g) > 0 {
			ratio = fmt.Sprintf("%.0f", float64(cpu(p))/float64(cpu(g)))
		}
		packets := func(r fleetRow) float64 { return float64(r.wire.RxPackets + r.wire.TxPackets) }
		fmt.Fprintf(&b, "| %d | %s | %+.1f | %.2f | %.2f |\n", n, ratio,
			perMin(cpu(g), g.hold)-perMin(cpu(d), d.hold),
			packets(g)/max(1, packets(p)), packets(lean)/max(1, packets(p)))
	}
	return b.String()
}

func mustDesc(name string, budget time.Duration) string {
	s, err := fleet.Get(name, budget)
	if err != nil {
		return err.Error()
	}
	return s.Desc
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
