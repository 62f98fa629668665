package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// trialKind is what the connection does when its server vanishes.
type trialKind int

const (
	idleTrial   trialKind = iota // reads, nothing to send
	writeTrial                   // one large write, blocked when the window fills
	steadyTrial                  // 1 KiB every 5 ms until the error, as a streaming server writes
	burstTrial                   // a burst, then 1 KiB every period: a window grown first (the send hold's case)
)

// burstWriter is what a burstTrial writes: burst bytes in 64 KiB writes,
// then 1 KiB every period.
type burstWriter struct {
	burst  int
	period time.Duration
}

func (w burstWriter) String() string {
	return fmt.Sprintf("%d MiB then 1 KiB every %v", w.burst>>20, w.period)
}

// trial measures one detection: a connection to a stock server that keeps
// reading, whose server vanishes (blackhole routes on the server's side
// only, so the client's sends meet no local error). The connection comes
// from tuning.Dialer, or for a burstTrial from the kit's DialFunc (a
// *tuning.Conn, guarded unless c.NoGuard, whose send hold it needs: a bare
// TCPConn's streaming writer has no bound). path, if not nil, is the lab's
// link.
func trial(c tuning.Config, kind trialKind, w burstWriter, path *lab.Path) (time.Duration, []string, error) {
	var l *lab.Lab
	var err error
	if path != nil {
		l, err = lab.NewPath(*path)
	} else {
		l, err = lab.New()
	}
	if err != nil {
		return 0, nil, err
	}
	defer l.Close()
	dial := c.Dialer().Dial
	if kind == burstTrial {
		df := c.DialFunc(nil)
		dial = func(network, addr string) (net.Conn, error) { return df(context.Background(), network, addr) }
	}
	conn, s, err := l.TCPPair((&net.ListenConfig{}).Listen, dial)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	defer s.Close()
	go io.Copy(io.Discard, s)
	errc, vanished := make(chan error, 1), make(chan struct{})
	var once sync.Once
	vanish := func() { once.Do(func() { close(vanished) }) }
	defer vanish() // an early return lets the one-write goroutine go
	stream := func(period time.Duration) {
		buf := make([]byte, 1024)
		for {
			if _, err := conn.Write(buf); err != nil {
				errc <- err
				return
			}
			time.Sleep(period)
		}
	}
	switch kind {
	case idleTrial:
		go func() {
			_, err := io.Copy(io.Discard, conn)
			errc <- err
		}()
	case writeTrial:
		// The buffer is made and its pages touched before the vanishing:
		// made after it, ten trials at a time faulting in 64 MiB each
		// held the first byte back for up to 0.9 s on this machine's VM,
		// so the write began that much after the clock did.
		buf := make([]byte, 64<<20)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1
		}
		go func() {
			<-vanished
			_, err := conn.Write(buf)
			errc <- err
		}()
	case steadyTrial:
		go stream(5 * time.Millisecond)
		time.Sleep(time.Second) // a stream in full flow
	case burstTrial:
		buf := make([]byte, 64<<10)
		for range w.burst / len(buf) {
			if _, err := conn.Write(buf); err != nil {
				return 0, nil, err
			}
		}
		go stream(w.period)
		time.Sleep(200 * time.Millisecond) // streaming, the window grown
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, nil, fmt.Errorf("%T has no socket", conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, nil, err
	}
	if err := l.Vanish(lab.Server); err != nil {
		return 0, nil, err
	}
	start := time.Now()
	vanish()
	ended := make(chan struct{})
	trace := make(chan []string, 1)
	go func() { trace <- traceTCP(rc, start, ended) }()
	<-errc
	took := time.Since(start)
	close(ended)
	return took, <-trace, nil
}

// traceTCP samples the socket's TCP_INFO every 2 ms from start until ended
// is closed, and returns a line for each sample in which the kernel's
// retransmission state changed: what a trial outside its window is
// printed with.
func traceTCP(rc syscall.RawConn, start time.Time, ended <-chan struct{}) []string {
	var lines []string
	var last string
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if info, err := lab.TCPInfo(rc); err == nil {
			now := fmt.Sprintf("state %d ca %d retransmits %d backoff %d rto %v rtt %v/%v cwnd %d unacked %d lost %d retrans %d total %d notsent %d last ack %dms",
				info.State, info.Ca_state, info.Retransmits, info.Backoff, time.Duration(info.Rto)*time.Microsecond,
				time.Duration(info.Rtt)*time.Microsecond, time.Duration(info.Rttvar)*time.Microsecond, info.Snd_cwnd,
				info.Unacked, info.Lost, info.Retrans, info.Total_retrans, info.Notsent_bytes, info.Last_ack_recv)
			if key := now[:strings.Index(now, " last ack")]; key != last {
				last = key
				lines = append(lines, fmt.Sprintf("%8v %s", time.Since(start).Round(time.Millisecond), now))
			}
		}
		select {
		case <-ended:
			return lines
		case <-tick.C:
		}
	}
}

// slack is how far past Bounds a detection may come and still count:
// the lab's own delay in seeing the error.
const slack = 20 * time.Millisecond

// precisionCell is one row of part 5: a Config, what the connection does,
// and over which link.
type precisionCell struct {
	budget          time.Duration
	path            *lab.Path // nil: the veth pair
	name            string
	c               tuning.Config
	kind            trialKind
	w               burstWriter // a burstTrial's
	earliest, bound time.Duration
	late            time.Duration // what the window allows past bound + slack
}

// wanPaths are part 5's phone paths, each with the budget it is given
// (ForBudgetOnPath refuses 600 ms at 10 s).
var wanPaths = []struct {
	rtt, budget time.Duration
}{{200 * time.Millisecond, 10 * time.Second}, {600 * time.Millisecond, 30 * time.Second}}

func precisionCells(o options) ([]precisionCell, error) {
	var cells []precisionCell
	add := func(budget time.Duration, path *lab.Path, c tuning.Config) {
		ei, eb := c.Earliest()
		idle, busy := c.Bounds()
		var late time.Duration
		if path != nil {
			// The server's last packets were on the link as it vanished:
			// they arrive up to one way's delay and jitter later.
			late = path.Down.Delay + path.Down.Jitter
		}
		noGuard := c
		noGuard.NoGuard = true
		for _, k := range []struct {
			name            string
			kind            trialKind
			c               tuning.Config
			w               burstWriter
			earliest, bound time.Duration
			lan             bool // not over a phone path: the writers above cover it
		}{
			{"idle", idleTrial, c, burstWriter{}, ei, idle, false},
			{"busy, one write", writeTrial, c, burstWriter{}, eb, busy, true},
			{"busy, steady writer", steadyTrial, c, burstWriter{}, eb, busy, false},
			{"busy, 1 MiB then 1 KiB every 5 ms (DialFunc)", burstTrial, c, burstWriter{1 << 20, 5 * time.Millisecond}, eb, c.GuardBound(), false},
			{"busy, 1 MiB then 1 KiB every 10 ms (DialFunc)", burstTrial, c, burstWriter{1 << 20, 10 * time.Millisecond}, eb, c.GuardBound(), false},
			{"busy, 1 MiB then 1 KiB every 1 ms (DialFunc)", burstTrial, c, burstWriter{1 << 20, time.Millisecond}, eb, c.GuardBound(), true},
			{"busy, 1 MiB then 1 KiB every 8 ms (DialFunc)", burstTrial, c, burstWriter{1 << 20, 8 * time.Millisecond}, eb, c.GuardBound(), true},
			{"busy, 1 MiB then 1 KiB every 20 ms (DialFunc)", burstTrial, c, burstWriter{1 << 20, 20 * time.Millisecond}, eb, c.GuardBound(), true},
			{"busy, 4 MiB then 1 KiB every 5 ms (DialFunc)", burstTrial, c, burstWriter{4 << 20, 5 * time.Millisecond}, eb, c.GuardBound(), true},
			{"busy, 1 MiB then 1 KiB every 5 ms (DialFunc, NoGuard)", burstTrial, noGuard, burstWriter{1 << 20, 5 * time.Millisecond}, eb, busy, true},
		} {
			if path != nil && k.lan {
				continue
			}
			cells = append(cells, precisionCell{budget, path, k.name, k.c, k.kind, k.w, k.earliest, k.bound, late})
		}
	}
	for _, budget := range o.precisionBudgets {
		c, err := tuning.ForBudget(budget)
		if err != nil {
			return nil, err
		}
		add(budget, nil, c)
	}
	for _, w := range wanPaths {
		if o.smoke || !o.wan {
			break
		}
		p := lab.Phone(w.rtt)
		c, err := tuning.ForBudgetOnPath(w.budget, p.LongestRTT())
		if err != nil {
			return nil, err
		}
		add(w.budget, &p, c)
	}
	return cells, nil
}

func runPrecision(o options) (string, error) {
	cells, err := precisionCells(o)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Raw TCP, the server vanishing (blackhole routes on its side); %d trials of each kind and budget, %d at a time, each in a lab of its own: a veth pair (LAN), or the lab's phone-grade link (lab.Phone: the round trip with a tenth of it as jitter) with tuning.ForBudgetOnPath(budget, the link's longest round trip). A detection is in the window when it comes no earlier than Earliest() − %v (the peer's last packet precedes the vanishing) and no later than the bound + %v (on a phone path, + one way's delay and jitter too: the server's last packets were still on the link). Idle, one 64 MiB write and a steady writer (1 KiB every 5 ms, in full flow for a second before the vanishing) go through tuning.Dialer, bound Bounds(); the writers that burst first (1 or 4 MiB, in 64 KiB writes) go through DialFunc (the kit's *tuning.Conn, with its send hold), guarded with bound GuardBound(), or with NoGuard and bound Bounds(); over the phone paths, only those at 5 and 10 ms.\n\n", o.trials, o.parallel, lab.Early, slack)
	b.WriteString("| budget | path | connection | earliest | worst | min | p10 | p50 | p90 | max | max / worst | in window | under the budget |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, k := range cells {
		path := "LAN"
		if k.path != nil {
			path = fmt.Sprintf("phone, %v", k.path.RTT())
		}
		fmt.Printf("part 5: %d trials, budget %v, %s, %s\n", o.trials, k.budget, path, k.name)
		var mu sync.Mutex
		var took []time.Duration
		var firstErr error
		in, under := 0, 0
		sem := make(chan struct{}, o.parallel)
		var wg sync.WaitGroup
		for range o.trials {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				d, trace, err := trial(k.c, k.kind, k.w, k.path)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					firstErr = err
					return
				}
				took = append(took, d)
				if d >= k.earliest-lab.Early && d <= k.bound+slack+k.late {
					in++
				} else {
					fmt.Printf("part 5: a trial outside its window, %v; its socket from the vanishing:\n  %s\n", d.Round(time.Millisecond), strings.Join(trace, "\n  "))
				}
				if d <= k.budget {
					under++
				}
			})
		}
		wg.Wait()
		if firstErr != nil {
			return "", firstErr
		}
		slices.Sort(took)
		q := func(p float64) time.Duration { return took[int(p*float64(len(took)-1))].Round(time.Millisecond) }
		fmt.Fprintf(&b, "| %v | %s | %s | %v | %v | %v | %v | %v | %v | %v | %.3f | %d of %d | %d of %d |\n", k.budget, path, k.name, k.earliest, k.bound.Round(time.Millisecond),
			q(0), q(0.1), q(0.5), q(0.9), q(1), float64(took[len(took)-1])/float64(k.bound), in, len(took), under, len(took))
	}
	b.WriteString("\nA max / worst under 1 is a detection before the worst case, as it should be.\n")
	return b.String(), nil
}
