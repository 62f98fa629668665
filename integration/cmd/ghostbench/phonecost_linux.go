package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/ghostsock/ghostsock/integration/fleet"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/integration/testsvc"
	"github.com/ghostsock/ghostsock/tuning"
)

// phoneSettings are the settings part 8 prices; "defaults" sends nothing
// and detects nothing.
var phoneSettings = []string{"pings", "ghostsock", "lean"}

// phoneCell is one setting at one budget, with its channels idle or each
// waiting on an RPC (a phone's push stream).
type phoneCell struct {
	budget  time.Duration
	setting *fleet.Setting
	waiting bool
	wire    lab.Counters
	held    time.Duration
	err     error
}

// runPhoneCost holds every cell at once, each in a lab of its own, for
// o.phoneHold, and counts what crossed each lab's link.
func runPhoneCost(o options) (string, error) {
	var cells []*phoneCell
	for _, d := range o.phoneBudgets {
		for _, name := range phoneSettings {
			s, err := fleet.Get(name, d)
			if err != nil {
				return "", err
			}
			for _, waiting := range []bool{false, true} {
				cells = append(cells, &phoneCell{budget: d, setting: s, waiting: waiting})
			}
		}
	}
	fmt.Printf("part 8: %d cells of %d channels, holding %v\n", len(cells), o.phoneChannels, o.phoneHold)
	done := make(chan struct{})
	for _, cell := range cells {
		go func() {
			defer func() { done <- struct{}{} }()
			cell.err = cell.hold(o.phoneChannels, o.phoneHold)
		}()
	}
	for range cells {
		<-done
	}
	var b strings.Builder
	fmt.Fprintf(&b, "What a budget costs an idle phone: %d gRPC channels per cell, each its own TCP connection over the lab's veth pair (the packets are the same on any path), held for %v after a 2 s settle, every cell at once, each in a lab of its own; counted by the kernel on the lab's link, each direction, and given per channel per hour (scaled from the hold). *Idle*: the channel made one RPC and then nothing. *Waiting*: the channel has one RPC open that sends nothing, as a phone waiting on a push stream. grpc-go's channel idle timeout (30 min by default, which would close an idle channel's connection) is switched off, so that each connection is held for the whole hour, as a phone holding a channel for push. IPv4 with TCP timestamps; bytes as the link counts them, the 14-byte Ethernet header included. *At the phone* is every packet the phone sends or receives: each one is radio time. Settings: pings = grpc-go keepalive pings on both ends as fleet.PingParams tunes them to the budget (at 20 s, for example: %s); ghostsock = ForBudget(budget) on both ends, pings off; lean = ForBudget on the server, Lean() on the client. *Finds a vanished server within* is the idle channel's worst case as the setting states it (Bounds for the kit; ping time + timeout for pings, which grpc-go's 10 s floor on a client's ping time keeps above a 5 s or 10 s budget).\n\n",
		o.phoneChannels, o.phoneHold, mustDesc("pings", 20*time.Second))
	b.WriteString("| budget | setting | channel | finds a vanished server within | phone sends, packets/h | phone sends, bytes/h | server sends, packets/h | server sends, bytes/h | packets/h at the phone |\n| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	var failed []string
	for _, c := range cells {
		kind := "idle"
		if c.waiting {
			kind = "waiting"
		}
		if c.err != nil {
			failed = append(failed, fmt.Sprintf("%v %s %s: %v", c.budget, c.setting.Name, kind, c.err))
			fmt.Fprintf(&b, "| %v | %s | %s | | failed: %v | | | | |\n", c.budget, c.setting.Name, kind, c.err)
			continue
		}
		within := c.setting.Bound[0]
		if c.waiting {
			within = c.setting.Bound[1]
		}
		per := func(v uint64) string {
			return fmt.Sprintf("%.0f", float64(v)*float64(time.Hour)/float64(c.held)/float64(o.phoneChannels))
		}
		fmt.Fprintf(&b, "| %v | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.budget, c.setting.Name, kind, boundText(within),
			per(c.wire.TxPackets), per(c.wire.TxBytes), per(c.wire.RxPackets), per(c.wire.RxBytes), per(c.wire.TxPackets+c.wire.RxPackets))
	}
	if failed != nil {
		return b.String(), fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return b.String(), nil
}

func boundText(d time.Duration) string {
	if d == tuning.Never {
		return "never"
	}
	return d.Round(10 * time.Millisecond).String()
}

// hold serves testsvc on the lab's server host with the cell's setting,
// opens n channels from the client host, and counts the link's packets
// over hold.
func (c *phoneCell) hold(n int, hold time.Duration) error {
	l, err := lab.New()
	if err != nil {
		return err
	}
	defer l.Close()
	ln, err := l.Listen((&net.ListenConfig{}).Listen, "tcp", l.ServerAddrPort(0))
	if err != nil {
		return err
	}
	srv := grpc.NewServer(c.setting.Server...)
	testsvc.Register(srv)
	go srv.Serve(c.setting.Wrap(ln))
	defer srv.Stop()
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithIdleTimeout(0)}, c.setting.Client...)
	ccs, err := fleet.DialReady(ln.Addr().String(), n, func(int) []grpc.DialOption { return opts })
	if err != nil {
		return err
	}
	defer func() {
		for _, cc := range ccs {
			cc.Close()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if c.waiting {
		for _, cc := range ccs {
			// The server waits in Recv until the client sends or ends.
			if _, err := testpb.NewTestServiceClient(cc).StreamingInputCall(ctx); err != nil {
				return fmt.Errorf("opening the waiting RPC: %w", err)
			}
		}
	}
	time.Sleep(2 * time.Second) // the RPCs' own packets acknowledged
	before, err := l.Counters()
	if err != nil {
		return err
	}
	start := time.Now()
	time.Sleep(hold)
	after, err := l.Counters()
	if err != nil {
		return err
	}
	c.held = time.Since(start)
	c.wire = after.Sub(before)
	return nil
}
