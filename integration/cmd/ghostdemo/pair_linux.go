package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/ghostsock/ghostsock/integration/fleet"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/integration/testsvc"
	"github.com/ghostsock/ghostsock/internal/sockfind"
	"github.com/ghostsock/ghostsock/tuning"
)

const (
	idleCh = iota
	streamCh
)

// msg is one line between a pair process and the demo, as JSON.
type msg struct {
	Kind  string       `json:"kind"`            // ready, streaming, event, state
	Ch    int          `json:"ch,omitempty"`    // event: idleCh or streamCh
	At    int64        `json:"at,omitempty"`    // event: Unix nanoseconds
	Text  string       `json:"text,omitempty"`  // event: what the application saw
	Conns [2]connState `json:"conns,omitempty"` // state
	Ready int          `json:"ready,omitempty"` // state: channels still READY
	Total int          `json:"total,omitempty"` // state: channels in all
}

// connState is what the kernel says of a client socket.
type connState struct {
	State       string        `json:"state"`
	RTO         time.Duration `json:"rto"`
	Retransmits uint8         `json:"retransmits"`
	Hold        time.Duration `json:"hold"` // how long the kernel holds it after the peer vanished
	Why         string        `json:"why"`
}

// addrs records a channel's socket addresses from its stats handler.
type addrs struct {
	mu            sync.Mutex
	local, remote net.Addr
}

func (a *addrs) TagConn(ctx context.Context, i *stats.ConnTagInfo) context.Context {
	a.mu.Lock()
	a.local, a.remote = i.LocalAddr, i.RemoteAddr
	a.mu.Unlock()
	return ctx
}
func (a *addrs) HandleConn(context.Context, stats.ConnStats)                     {}
func (a *addrs) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (a *addrs) HandleRPC(context.Context, stats.RPCStats)                       {}

// runPair is the pair process: it serves on the listener passed as fd 3,
// opens extra+2 channels to it, and then answers the demo's commands on
// stdin: "stream" starts the busy stream, "state" reports the kernel's view
// of the two watched sockets, "quit" ends it.
func runPair(name string, budget time.Duration, extra int) error {
	p, err := fleet.Get(name, budget)
	if err != nil {
		return err
	}
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return fmt.Errorf("listener from the demo: %w", err)
	}
	srv := grpc.NewServer(p.Server...)
	testsvc.Register(srv)
	go srv.Serve(p.Wrap(ln))

	out := json.NewEncoder(os.Stdout)
	var outMu sync.Mutex
	send := func(m msg) {
		outMu.Lock()
		defer outMu.Unlock()
		out.Encode(m)
	}

	watched := [2]*addrs{{}, {}}
	ccs, err := fleet.DialReady(ln.Addr().String(), extra+2, func(i int) []grpc.DialOption {
		opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, p.Client...)
		if i < len(watched) {
			opts = append(opts, grpc.WithStatsHandler(watched[i]))
		}
		return opts
	})
	if err != nil {
		return err
	}
	go func() {
		cc := ccs[idleCh]
		cc.WaitForStateChange(context.Background(), connectivity.Ready)
		send(msg{Kind: "event", Ch: idleCh, At: time.Now().UnixNano(), Text: "channel " + cc.GetState().String()})
	}()
	send(msg{Kind: "ready"})

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "stream":
			errc, err := testsvc.Endless(context.Background(), testpb.NewTestServiceClient(ccs[streamCh]))
			if err != nil {
				return err
			}
			go func() {
				err := <-errc
				send(msg{Kind: "event", Ch: streamCh, At: time.Now().UnixNano(), Text: status.Code(err).String()})
			}()
			send(msg{Kind: "streaming"})
		case "state":
			m := msg{Kind: "state", Total: len(ccs)}
			for _, cc := range ccs {
				if cc.GetState() == connectivity.Ready {
					m.Ready++
				}
			}
			for i, a := range watched {
				m.Conns[i] = kernelState(a)
			}
			send(m)
		case "quit":
			return nil
		}
	}
	return in.Err()
}

// kernelState reads TCP_INFO and the socket options of a watched channel's
// socket, and works out how long the kernel would hold it: the keepalive
// bound when nothing is in flight, else TCP_USER_TIMEOUT or the
// tcp_retries2 backoff.
func kernelState(a *addrs) connState {
	a.mu.Lock()
	local, remote := a.local, a.remote
	a.mu.Unlock()
	f, err := sockfind.Conn(local, remote)
	if err != nil {
		return connState{State: "closed"}
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return connState{State: err.Error()}
	}
	info, err := lab.TCPInfo(rc)
	if err != nil {
		return connState{State: err.Error()}
	}
	cfg, err := tuning.ReadRawConn(rc)
	if err != nil {
		return connState{State: err.Error()}
	}
	s := connState{State: lab.StateName(info.State), RTO: time.Duration(info.Rto) * time.Microsecond, Retransmits: info.Retransmits}
	idle, busy := cfg.Bounds()
	switch {
	case info.Unacked > 0 && cfg.UserTimeout > 0:
		s.Hold, s.Why = busy, "TCP_USER_TIMEOUT"
	case info.Unacked > 0:
		r2 := retries2()
		s.Hold, s.Why = tuning.RetriesTimeout(r2), fmt.Sprintf("tcp_retries2=%d, %d retransmits so far, RTO now %s", r2, s.Retransmits, short(s.RTO))
	case !cfg.KeepAlive.Enable:
		s.Hold, s.Why = tuning.Never, "keepalive off"
	default:
		k := cfg.KeepAlive
		s.Hold, s.Why = idle, fmt.Sprintf("keepalive %s+%d×%s", short(k.Idle), k.Count, short(k.Interval))
		if cfg.UserTimeout > 0 {
			s.Why = fmt.Sprintf("keepalive %s, TCP_USER_TIMEOUT %s", short(k.Idle), short(cfg.UserTimeout))
		}
	}
	return s
}

// retries2 reads net.ipv4.tcp_retries2 in this network namespace.
func retries2() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_retries2")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return tuning.KernelRetries2
}
