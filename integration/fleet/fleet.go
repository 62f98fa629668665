// Package fleet holds what the demo and the benchmarks share: the four
// ways of running gRPC that they compare, and readings of a process's CPU
// time and memory from /proc.
package fleet

import (
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/tuning"
)

// Names of the settings, in the order reports show them.
var Names = []string{"defaults", "pings", "ghostsock", "lean"}

// A Setting is one way to run a gRPC client and server.
type Setting struct {
	Name string
	Desc string // how detection is configured, for people
	// Bound is the worst-case detection of a vanished server by a client
	// channel that is idle, and by one receiving a stream; tuning.Never
	// where nothing detects it.
	Bound  [2]time.Duration
	Server []grpc.ServerOption
	Client []grpc.DialOption
	Wrap   func(net.Listener) net.Listener // applied to the server's listener
}

// MinClientPing is grpc-go's floor for a client's keepalive Time
// (internal.KeepaliveMinPingTime): shorter values are raised to it.
const MinClientPing = 10 * time.Second

// PingParams tunes grpc-go client keepalive so that a dead server is
// detected within budget where grpc-go allows it: the client pings after
// pingTime of silence and gives up pingTimeout later (grpc-go also sets
// TCP_USER_TIMEOUT to pingTimeout). Below 11 s grpc-go's floor makes the
// sum exceed the budget.
func PingParams(budget time.Duration) (pingTime, pingTimeout time.Duration) {
	pingTime = max(MinClientPing, budget/2)
	pingTimeout = max(time.Second, budget-pingTime)
	return pingTime, pingTimeout
}

// Get returns the named setting for budget:
//
//   - defaults: grpc-go as it ships, no keepalive pings;
//   - pings: grpc-go keepalive pings on both sides tuned to budget (see
//     PingParams; the server pings after budget/2 with budget/2 to answer)
//     and an enforcement policy that allows the client's pings;
//   - ghostsock: tuning.ForBudget(budget) through grpcdial and grpcserver;
//   - lean: the same on the server, and on the client c.Lean(): the client
//     sends nothing while idle and learns of a vanished server when it
//     next sends (its idle bound is Never; its busy one the budget).
func Get(name string, budget time.Duration) (*Setting, error) {
	s := &Setting{Name: name, Wrap: func(ln net.Listener) net.Listener { return ln }}
	switch name {
	case "defaults":
		s.Desc = "grpc-go as shipped: no keepalive pings"
		s.Bound = [2]time.Duration{tuning.Never, tuning.Never}
	case "pings":
		t, to := PingParams(budget)
		s.Desc = fmt.Sprintf("keepalive pings: client after %v idle (timeout %v), server after %v (timeout %v)", t, to, budget/2, budget-budget/2)
		// A client reading a stream sends little: it is as idle as the
		// idle channel unless a WINDOW_UPDATE is in flight, when grpc-go's
		// TCP_USER_TIMEOUT (the ping timeout) ends it sooner.
		s.Bound = [2]time.Duration{t + to, t + to}
		s.Client = []grpc.DialOption{grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: t, Timeout: to, PermitWithoutStream: true})}
		s.Server = []grpc.ServerOption{
			grpc.KeepaliveParams(keepalive.ServerParameters{Time: budget / 2, Timeout: budget - budget/2}),
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: t, PermitWithoutStream: true}),
		}
	case "ghostsock", "lean":
		c, err := tuning.ForBudget(budget)
		if err != nil {
			return nil, err
		}
		idle, busy := c.Bounds()
		k := c.KeepAlive
		s.Desc = fmt.Sprintf("ForBudget(%v): TCP_USER_TIMEOUT %v, keepalive %v+%d×%v, pings off", budget, c.UserTimeout, k.Idle, k.Count, k.Interval)
		s.Bound = [2]time.Duration{idle, max(idle, busy)}
		client := c
		if name == "lean" {
			client = c.Lean()
			s.Desc = fmt.Sprintf("ForBudget(%v) on the server, Lean() on the client: only the server probes; an idle client learns of a vanished server when it next sends, one waiting on an RPC by its own probes", budget)
			// A channel reading a stream sends WINDOW_UPDATEs, so the
			// user timeout catches it; an idle one is not caught.
			s.Bound = [2]time.Duration{tuning.Never, max(idle, busy)}
		}
		s.Client = grpcdial.Options(client)
		s.Server = grpcserver.Options(c)
		s.Wrap = func(ln net.Listener) net.Listener { return grpcserver.WrapListener(ln, c) }
	default:
		return nil, fmt.Errorf("fleet: unknown setting %q (want defaults, pings, ghostsock or lean)", name)
	}
	return s, nil
}
