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
	ln, err := l.Listen((&net.ListenConfig{}).Listen, "tcp", l.ServerAddrPort(0))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- s
	}()
	conn, err := c.Dialer().Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	s, ok := <-accepted
	if !ok {
		return 0, fmt.Errorf("accept failed")
	}
	defer s.Close()
	// A round trip, so both sides have just heard from each other.
	if _, err := conn.Write([]byte{1}); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		return 0, err
	}
	if _, err := s.Write([]byte{2}); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		return 0, err
	}
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
	fmt.Fprintf(&b, "Raw TCP through tuning.Dialer with ForBudget(%v), the server vanishing (blackhole routes); %d trials of each kind, %d at a time, each in a lab of its own. The tolerance the integration tests apply is [bound − 300 ms, bound + 800 ms].\n\n", o.precisionBudget, o.trials, o.parallel)
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
				if d >= k.bound-300*time.Millisecond && d <= k.bound+800*time.Millisecond {
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
