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
// cloud load balancer, a NAT) that forgets a flow idle for limit: the
// same worst cases within d, with keepalive Idle and Interval chosen no
// longer than a whole number of seconds whose timer, firing up to an
// eighth late, still comes before limit, and as many probes as the budget
// then needs (more than ForBudget's three for a budget far above the
// limit). A connection idles Idle before
// its first probe, a probe's answer starts Idle again, and an unanswered
// probe is followed by one every Interval, so no idle flow goes silent
// for limit. Where ForBudget's own Idle is shorter already (budgets up to
// about twice the limit), the result is ForBudget's.
//
// The cost is probes: each end with keepalive sends one, and its peer an
// answer, once per Idle of idleness: 3600/Idle probes an hour
// (ExampleForBudgetWithIdleLimit lists them for the common limits). Only
// one end needs the limit: a flow the middlebox sees either end's probe
// cross stays alive, so a Lean client is fine if the server's Config has
// it.
//
// limit must leave room for a one-second Idle; otherwise the error wraps
// ErrIdleLimit and says why. d is checked as ForBudget checks it.
func ForBudgetWithIdleLimit(d, limit time.Duration) (Config, error) {
	// The timer fires up to timerSlack late, and the probe it sends may
	// wait another tick to leave: idle*9/8 + 2 ticks < limit.
	most := time.Duration(int64((limit-2*timers.JiffyMax)*8/9/time.Second)) * time.Second
	if most < time.Second {
		return Config{}, fmt.Errorf("%w: limit %v: keepalive counts in whole seconds, and a 1 s timer may fire %v late", ErrIdleLimit, limit, timers.Slack(time.Second))
	}
	return forBudget(d, min(most, MaxKeepAliveIdle))
}
