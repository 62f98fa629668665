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

// trial measures one detection: a connection from tuning.Dialer to a stock
// server, idle or writing, whose server vanishes.
func trial(c tuning.Config, busy bool) (time.Duration, error) {
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
	if err := l.Vanish(lab.Server); err != nil {
		return 0, err
	}
	start := time.Now()
	if busy {
		buf := make([]byte, 32<<10)
		for {
			if _, err := conn.Write(buf); err != nil {
				break
			}
		}
	} else {
		io.Copy(io.Discard, conn)
	}
	return time.Since(start), nil
}

func runPrecision(o options) (string, error) {
	c, err := tuning.ForBudget(o.precisionBudget)
	if err != nil {
		return "", err
	}
	idle, busy := c.Bounds()
	var b strings.Builder
	fmt.Fprintf(&b, "Raw TCP through tuning.Dialer with ForBudget(%v), the server vanishing (blackhole routes); %d trials of each kind, %d at a time, each in a lab of its own. The tolerance the integration tests apply is [bound − %v, bound + %v].\n\n", o.precisionBudget, o.trials, o.parallel, lab.Early, lab.Late)
	b.WriteString("| connection | bound | min | p10 | p50 | p90 | max | in tolerance |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, k := range []struct {
		name  string
		busy  bool
		bound time.Duration
	}{{"idle", false, idle}, {"busy", true, busy}} {
		fmt.Printf("part 5: %d %s trials\n", o.trials, k.name)
		var mu sync.Mutex
		var ratios []float64
		var firstErr error
		in := 0
		sem := make(chan struct{}, o.parallel)
		var wg sync.WaitGroup
		for range o.trials {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				d, err := trial(c, k.busy)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					firstErr = err
					return
				}
				ratios = append(ratios, float64(d)/float64(k.bound))
				if d >= k.bound-lab.Early && d <= k.bound+lab.Late {
					in++
				}
			})
		}
		wg.Wait()
		if firstErr != nil {
			return "", firstErr
		}
		slices.Sort(ratios)
		q := func(p float64) float64 { return ratios[int(p*float64(len(ratios)-1))] }
		fmt.Fprintf(&b, "| %s | %v | %.3f | %.3f | %.3f | %.3f | %.3f | %d of %d |\n", k.name, k.bound, ratios[0], q(0.1), q(0.5), q(0.9), ratios[len(ratios)-1], in, len(ratios))
	}
	b.WriteString("\nFigures are measured / bound.\n")
	return b.String(), nil
}
