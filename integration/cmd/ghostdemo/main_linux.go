package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ghostsock/ghostsock/integration/fleet"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/tuning"
)

func main() {
	budget := flag.Duration("budget", 15*time.Second, "detection budget: ghostsock uses ForBudget(budget), the pings pair grpc-go keepalive tuned to it")
	wait := flag.Duration("wait", 45*time.Second, "how long to watch after the servers vanish")
	hold := flag.Duration("hold", 20*time.Second, "how long all channels stay idle first, to measure what staying ready costs")
	extra := flag.Int("fleet", 1000, "extra idle channels per pair, each its own TCP connection")
	child := flag.String("pair", "", "internal: run one pair (defaults, pings or ghostsock)")
	flag.Parse()
	if *child != "" {
		if err := runPair(*child, *budget, *extra); err != nil {
			fmt.Fprintf(os.Stderr, "ghostdemo %s pair: %v\n", *child, err)
			os.Exit(1)
		}
		return
	}
	if _, err := tuning.ForBudget(*budget); err != nil || *wait <= 0 || *hold < 0 || *extra < 0 {
		fmt.Fprintf(os.Stderr, "ghostdemo: bad flags (budget %v: %v; wait, hold and fleet must not be negative)\n", *budget, err)
		os.Exit(2)
	}
	if err := lab.Enter(); err != nil {
		fmt.Fprintf(os.Stderr, "ghostdemo: %v\n", err)
		if errors.Is(err, lab.ErrNoNamespaces) {
			fmt.Fprintln(os.Stderr, wrap("", "The demo builds a private two-host network in network namespaces "+
				"and found it may not. Run it as root (sudo -E go run ./integration/cmd/ghostdemo) "+
				"or on a machine that allows unprivileged user namespaces."))
		}
		os.Exit(2)
	}
	if err := demo(*budget, *wait, *hold, *extra); err != nil {
		fmt.Fprintf(os.Stderr, "ghostdemo: %v\n", err)
		os.Exit(1)
	}
}

// proc is one pair process as the demo sees it.
type proc struct {
	*fleet.Setting
	*fleet.Proc
	lab     *lab.Lab
	replies chan msg // what is not an event

	mu       sync.Mutex
	detected [2]time.Time
	text     [2]string
	vanished time.Time
}

func startProc(name string, budget time.Duration, extra int) (*proc, error) {
	s, err := fleet.Get(name, budget)
	if err != nil {
		return nil, err
	}
	l, err := lab.New()
	if err != nil {
		return nil, err
	}
	f, _, err := l.ListenerFile()
	if err != nil {
		l.Close()
		return nil, err
	}
	defer f.Close() // the pair process holds its own copy
	fp, err := fleet.Start(name+" pair", []string{"-pair", name, "-budget", budget.String(), "-fleet", strconv.Itoa(extra)}, f)
	if err != nil {
		l.Close()
		return nil, err
	}
	p := &proc{Setting: s, Proc: fp, lab: l, replies: make(chan msg, 4)}
	go p.read()
	return p, nil
}

// read takes the pair's lines: events are recorded, the rest passed on.
func (p *proc) read() {
	defer close(p.replies)
	for line := range p.Lines {
		var m msg
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if m.Kind == "event" {
			p.mu.Lock()
			p.detected[m.Ch], p.text[m.Ch] = time.Unix(0, m.At), m.Text
			p.mu.Unlock()
			continue
		}
		p.replies <- m
	}
}

// ask sends a command (none if empty) and waits for the answer of the
// given kind.
func (p *proc) ask(cmd, kind string, limit time.Duration) (msg, error) {
	if cmd != "" {
		if err := p.Send(cmd); err != nil {
			return msg{}, err
		}
	}
	select {
	case m, ok := <-p.replies:
		if !ok {
			return msg{}, fmt.Errorf("%s ended", p.Proc.Name)
		}
		if m.Kind != kind {
			return msg{}, fmt.Errorf("%s: got %q, want %q", p.Proc.Name, m.Kind, kind)
		}
		return m, nil
	case <-time.After(limit):
		return msg{}, fmt.Errorf("%s: no %q within %v", p.Proc.Name, kind, limit)
	}
}

// after is how long after the vanishing channel ch saw its error, or false.
func (p *proc) after(ch int) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.detected[ch].IsZero() {
		return 0, false
	}
	return p.detected[ch].Sub(p.vanished), true
}

func (p *proc) stop() {
	p.Stop()
	p.lab.Close()
}

func demo(budget, wait, hold time.Duration, extra int) error {
	fmt.Printf("ghostdemo: four gRPC client/server pairs on a private network, each with %d idle channels,\n"+
		"one more idle channel and one busy stream. Budget %v. Then every server vanishes: packets dropped,\n"+
		"no FIN, no RST, as when a phone dies or a NAT forgets the flow.\n\n", extra, budget)
	procs, err := startProcs(budget, extra)
	if err != nil {
		return err
	}
	defer stopProcs(procs)
	cost, err := measureIdle(procs, hold, extra)
	if err != nil {
		return err
	}
	for _, p := range procs {
		if _, err := p.ask("stream", "streaming", 30*time.Second); err != nil {
			return err
		}
	}
	if err := printCensus("Before the vanishing", procs); err != nil {
		return err
	}
	if err := watchVanish(procs, wait); err != nil {
		return err
	}
	if err := printCensus(fmt.Sprintf("%v after the vanishing", wait), procs); err != nil {
		return err
	}
	return report(procs, cost, hold, wait, extra)
}

// startProcs starts the four pairs, prints what each is and waits until
// all are ready. On an error it stops those it started.
func startProcs(budget time.Duration, extra int) (procs []*proc, err error) {
	defer func() {
		if err != nil {
			stopProcs(procs)
		}
	}()
	for _, name := range fleet.Names {
		p, err := startProc(name, budget, extra)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
		fmt.Println(wrap(fmt.Sprintf("  %-11s", name+":"), p.Desc))
	}
	for _, p := range procs {
		if _, err := p.ask("", "ready", 2*time.Minute); err != nil {
			return procs, err
		}
	}
	if t, _ := fleet.PingParams(budget); t > budget/2 {
		fmt.Printf("  (grpc-go raises a client's ping interval to at least %v)\n", fleet.MinClientPing)
	}
	return procs, nil
}

// stopProcs stops every pair.
func stopProcs(procs []*proc) {
	for _, p := range procs {
		p.stop()
	}
}

// watchVanish makes every server vanish and, for wait, prints a row each
// time a client notices: how long after the vanishing each channel saw
// its error.
func watchVanish(procs []*proc, wait time.Duration) error {
	fmt.Printf("\nBusy streams running. Servers vanish now; watching for %v, a row each time a client\n"+
		"notices (seconds after the vanishing; … not yet):\n\n", wait)
	for _, p := range procs {
		if err := p.lab.Vanish(lab.Server); err != nil {
			return err
		}
		p.mu.Lock()
		p.vanished = time.Now()
		p.mu.Unlock()
	}
	var t rows
	t.header(procs, "after", fmt.Sprintf("%-7s %s", "idle", "stream"))
	start := time.Now()
	for tick := time.NewTicker(time.Second); time.Since(start) < wait; <-tick.C {
		cells := make([]string, len(procs))
		for i, p := range procs {
			var seen [2]string
			for ch := range seen {
				seen[ch] = "…"
				if d, ok := p.after(ch); ok {
					seen[ch] = fmt.Sprintf("%.1fs", d.Seconds())
				}
			}
			cells[i] = fmt.Sprintf("%-7s %s", seen[0], seen[1])
		}
		t.row(fmt.Sprintf("+%.0fs", time.Since(start).Seconds()), cells)
	}
	return nil
}

// printCensus prints what ghostscan would print of the clients' side of
// every pair: the demo's own network namespace, where each pair's clients
// dial their own server address. The columns are ghostscan's.
func printCensus(when string, procs []*proc) error {
	c, err := census.Scan(census.Options{Settings: true})
	if err != nil {
		return fmt.Errorf("census: %w", err)
	}
	fmt.Printf("\n%s\n\n", wrap("", when+", the clients' connections as ghostscan counts them (settings read from each process):"))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PAIR\tESTAB\tUNWATCHED\tRETRANSMIT (SILENT)\tSUSPECT\tNEVER\tMAX-ENDS")
	for _, p := range procs {
		g := &census.Group{}
		for _, cg := range c.Groups {
			if strings.HasPrefix(cg.Name, "dial "+p.lab.ServerAddr.String()+":") {
				g = cg
			}
		}
		ends := "-"
		if g.Established > 0 && g.NeverEnds < g.Established {
			ends = g.MaxEndsIn.String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d (%v)\t%d\t%d\t%s\n", p.Setting.Name, g.Established, g.Unwatched, g.Retransmitting, g.SilentFor, g.Suspected, g.NeverEnds, ends)
	}
	return tw.Flush()
}

// idleCost is what one pair spent while every channel was idle.
type idleCost struct {
	cpu  time.Duration
	wire lab.Counters
}

// readCosts reads, per pair, the CPU time of its process and its link's
// counters.
func readCosts(procs []*proc) ([]idleCost, error) {
	var rs []idleCost
	for _, p := range procs {
		cpu, err := fleet.CPUTime(p.Cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		w, err := p.lab.Counters()
		if err != nil {
			return nil, err
		}
		rs = append(rs, idleCost{cpu, w})
	}
	return rs, nil
}

// measureIdle lets every channel idle for hold and reads, per pair, the CPU
// time of its process and the packets on its link. It prints a row each
// second that they changed.
func measureIdle(procs []*proc, hold time.Duration, extra int) ([]idleCost, error) {
	if hold == 0 {
		return nil, nil
	}
	fmt.Printf("\nAll %d channels of each pair idle for %v: what does staying ready cost? A row each second\n"+
		"that it grew (CPU of the pair's process, packets on its link):\n\n", extra+2, hold)
	before, err := readCosts(procs)
	if err != nil {
		return nil, err
	}
	var t rows
	t.header(procs, "time", fmt.Sprintf("%-6s %8s", "CPU", "packets"))
	costs := make([]idleCost, len(procs))
	start := time.Now()
	for tick := time.NewTicker(time.Second); ; <-tick.C {
		now, err := readCosts(procs)
		if err != nil {
			return nil, err
		}
		cells := make([]string, len(procs))
		for i := range procs {
			costs[i] = idleCost{now[i].cpu - before[i].cpu, now[i].wire.Sub(before[i].wire)}
			w := costs[i].wire
			cells[i] = fmt.Sprintf("%-6s %8d", fmt.Sprintf("%.2fs", costs[i].cpu.Seconds()), w.RxPackets+w.TxPackets)
		}
		t.row(fmt.Sprintf("%.0fs", time.Since(start).Seconds()), cells)
		if time.Since(start) >= hold {
			return costs, nil
		}
	}
}

// report prints what became of each pair's watched channels and, when the
// idle cost was measured, its table.
func report(procs []*proc, cost []idleCost, hold, wait time.Duration, extra int) error {
	fmt.Printf("\nAfter the servers vanished (bound = the worst case each setting promises):\n\n")
	fmt.Printf("%-11s%-9s%s\n", "pair", "channel", "what became of it")
	for _, p := range procs {
		st, err := p.ask("state", "state", 10*time.Second)
		if err != nil {
			return err
		}
		for ch, what := range []string{"idle", "stream"} {
			name := ""
			if ch == idleCh {
				name = p.Setting.Name
			}
			fmt.Println(wrap(fmt.Sprintf("%-11s%-9s", name, what), outcome(p, ch, st.Conns[ch], wait)))
		}
		fmt.Printf("%-11s%-9s%d of %d still READY\n", "", "channels", st.Ready, st.Total)
	}
	if cost == nil {
		return nil
	}
	fmt.Printf("\nCost of staying ready: %d idle channels per pair for %v (CPU of the pair's process, client and\nserver; packets and bytes on its link, counted by the kernel):\n\n", extra+2, hold)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "pair\tCPU\tpackets\tbytes")
	for i, p := range procs {
		w := cost[i].wire
		fmt.Fprintf(tw, "%s\t%.2fs\t%d\t%d\n", p.Setting.Name, cost[i].cpu.Seconds(), w.RxPackets+w.TxPackets, w.RxBytes+w.TxBytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Printf("\n%s\n", wrap("", "Pings and TCP keepalive both put packets on the wire to learn that a peer is alive; "+
		"only pings wake the process to do it. ghostsock leaves that to the kernel and bounds busy connections "+
		"with TCP_USER_TIMEOUT."))
	return nil
}

// outcome describes what became of channel ch of a pair.
func outcome(p *proc, ch int, st connState, wait time.Duration) string {
	if d, ok := p.after(ch); ok {
		p.mu.Lock()
		text := p.text[ch]
		p.mu.Unlock()
		return fmt.Sprintf("detected after %.1fs (%s; bound %v)", d.Seconds(), text, p.Bound[ch])
	}
	if p.Bound[ch] != tuning.Never {
		return fmt.Sprintf("not yet at %s (%s; bound %v)", short(wait), st.State, p.Bound[ch])
	}
	if p.Setting.Name == "lean" && ch == 0 {
		return fmt.Sprintf("not probed while idle (%s at %s): its next RPC fails within %v", st.State, short(wait), p.Bound[1])
	}
	hold := "forever (" + st.Why + ")"
	if st.Hold != tuning.Never {
		hold = fmt.Sprintf("%s (%s)", short(st.Hold), st.Why)
	}
	return fmt.Sprintf("still %s at %s; kernel keeps it %s", st.State, short(wait), hold)
}

// short prints a duration the way people say it: 2h11m, 15m25s, 1.5s.
func short(d time.Duration) string {
	switch {
	case d >= time.Hour:
		d = d.Round(time.Minute)
	case d >= time.Minute:
		d = d.Round(time.Second)
	}
	s := d.String()
	if d >= time.Minute {
		s = strings.TrimSuffix(s, "0s")
	}
	if d >= time.Hour {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
