package main

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
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
)

// trial measures one detection: a connection from tuning.Dialer to a stock
// server that keeps reading, whose server vanishes (blackhole routes on the
// server's side only, so the client's sends meet no local error).
func trial(c tuning.Config, kind trialKind) (time.Duration, error) {
	l, err := lab.New()
	if err != nil {
		return 0, err
	}
	defer l.Close()
	conn, s, err := l.TCPPair((&net.ListenConfig{}).Listen, c.Dialer().Dial)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	defer s.Close()
	go io.Copy(io.Discard, s)
	if kind == steadyTrial {
		time.Sleep(time.Second) // a stream in full flow
	}
	errc, vanished := make(chan error, 1), make(chan struct{})
	go func() {
		switch kind {
		case idleTrial:
			_, err := io.Copy(io.Discard, conn)
			errc <- err
		case writeTrial:
			<-vanished
			_, err := conn.Write(make([]byte, 64<<20))
			errc <- err
		case steadyTrial:
			buf := make([]byte, 1024)
			for {
				if _, err := conn.Write(buf); err != nil {
					errc <- err
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	if err := l.Vanish(lab.Server); err != nil {
		return 0, err
	}
	start := time.Now()
	close(vanished)
	<-errc
	return time.Since(start), nil
}

// slack is how far past Bounds a detection may come and still count:
// the lab's own delay in seeing the error.
const slack = 20 * time.Millisecond

func runPrecision(o options) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Raw TCP through tuning.Dialer, the server vanishing (blackhole routes on its side); %d trials of each kind and budget, %d at a time, each in a lab of its own. A detection is in the window when it comes no earlier than Earliest() − %v (the peer's last packet precedes the vanishing) and no later than Bounds() + %v. Busy: one 64 MiB write, and a steady writer (1 KiB every 5 ms, in full flow for a second before the vanishing).\n\n", o.trials, o.parallel, lab.Early, slack)
	b.WriteString("| budget | connection | earliest | worst (Bounds) | min | p10 | p50 | p90 | max | max − worst | in window |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, budget := range o.precisionBudgets {
		c, err := tuning.ForBudget(budget)
		if err != nil {
			return "", err
		}
		ei, eb := c.Earliest()
		idle, busy := c.Bounds()
		for _, k := range []struct {
			name            string
			kind            trialKind
			earliest, bound time.Duration
		}{{"idle", idleTrial, ei, idle}, {"busy, one write", writeTrial, eb, busy}, {"busy, steady writer", steadyTrial, eb, busy}} {
			fmt.Printf("part 5: %d %s trials, budget %v\n", o.trials, k.name, budget)
			var mu sync.Mutex
			var took []time.Duration
			var firstErr error
			in := 0
			sem := make(chan struct{}, o.parallel)
			var wg sync.WaitGroup
			for range o.trials {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					d, err := trial(c, k.kind)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						firstErr = err
						return
					}
					took = append(took, d)
					if d >= k.earliest-lab.Early && d <= k.bound+slack {
						in++
					}
				})
			}
			wg.Wait()
			if firstErr != nil {
				return "", firstErr
			}
			slices.Sort(took)
			q := func(p float64) time.Duration { return took[int(p*float64(len(took)-1))].Round(time.Millisecond) }
			fmt.Fprintf(&b, "| %v | %s | %v | %v | %v | %v | %v | %v | %v | %v | %d of %d |\n", budget, k.name, k.earliest, k.bound.Round(time.Millisecond),
				q(0), q(0.1), q(0.5), q(0.9), q(1), (took[len(took)-1] - k.bound).Round(time.Millisecond), in, len(took))
		}
	}
	b.WriteString("\nA negative max − worst is a detection before the worst case, as it should be.\n")
	return b.String(), nil
}
