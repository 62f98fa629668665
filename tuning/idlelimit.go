package tuning

import (
	"errors"
	"fmt"
	"time"

	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// Idle limits of the middleboxes users meet most, from their providers'
// documentation: a flow idle for longer is forgotten, and its next packet
// is dropped or answered with a reset.
const (
	IdleLimitAWSNLB   = 350 * time.Second // AWS Network Load Balancer, TCP
	IdleLimitAzureLB  = 240 * time.Second // Azure Load Balancer's default
	IdleLimitGCPCloud = 600 * time.Second // Google Cloud VPC firewall connection tracking, established TCP
)

// ErrIdleLimit is wrapped by ForBudgetWithIdleLimit's errors.
var ErrIdleLimit = errors.New("ghostsock: idle limit cannot be kept")

// ForBudgetWithIdleLimit is ForBudget for a path through a middlebox (a
// cloud load balancer, a NAT) that forgets a flow idle for limit: the same
// worst cases within d, with keepalive Idle and Interval short enough that
// their timers, an eighth late at worst, fire before limit, and as many
// probes as d then needs (Rule 9 in the package doc). Where ForBudget's Idle
// is short enough already, the result is ForBudget(d). The cost is a probe
// and its answer per Idle of idleness (ExampleForBudgetWithIdleLimit counts
// them); one end with the limit keeps the flow, so a Lean client is fine
// where the server has it. The error wraps ErrIdleLimit if limit leaves no
// room for a 1 s Idle, and ErrBudget if d is out of ForBudget's range.
func ForBudgetWithIdleLimit(d, limit time.Duration) (Config, error) {
	// The timer fires up to timers.Slack late, and the probe it sends may
	// wait another tick to leave: idle*9/8 + 2 ticks < limit.
	most := time.Duration(int64((limit-2*timers.JiffyMax)*8/9/time.Second)) * time.Second
	if most < time.Second {
		return Config{}, fmt.Errorf("%w: limit %v: keepalive counts in whole seconds, and a 1 s timer may fire %v late", ErrIdleLimit, limit, timers.Slack(time.Second))
	}
	return forBudget(d, min(most, MaxKeepAliveIdle))
}
