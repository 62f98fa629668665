package tuning

import (
	"errors"
	"fmt"
	"math"
	"net"
	"time"
)

// Never is what Bounds returns for a case the Config does not detect at
// all: an idle connection with keepalive off.
const Never = time.Duration(math.MaxInt64)

// Assumptions Bounds makes where a Config leaves the kernel in charge. They
// are Linux's defaults; a host whose sysctls differ gets other figures.
const (
	// KernelKeepAliveIdle, KernelKeepAliveInterval and KernelKeepAliveCount
	// are net.ipv4.tcp_keepalive_time, _intvl and _probes as Linux ships
	// them, used for fields set to Unchanged.
	KernelKeepAliveIdle     = 7200 * time.Second
	KernelKeepAliveInterval = 75 * time.Second
	KernelKeepAliveCount    = 9

	// KernelRetries2 is net.ipv4.tcp_retries2 as Linux ships it, used when
	// UserTimeout is zero.
	KernelRetries2 = 15

	// rtoMin and rtoMax are TCP_RTO_MIN and TCP_RTO_MAX (include/net/tcp.h).
	rtoMin = 200 * time.Millisecond
	rtoMax = 120 * time.Second
)

// Bounds returns the worst-case time from a peer vanishing (no FIN, no RST,
// every packet lost) to the error the socket reports, for an idle connection
// and for a busy one (data sent and unacknowledged). It follows Linux's
// timers (net/ipv4/tcp_timer.c), as tuning/doc.go sets out:
//
//   - busy, UserTimeout > 0: UserTimeout after the first retransmission
//     (the kernel starts counting there), which itself comes one RTO after
//     the first unacknowledged byte was sent. The retransmission timer is
//     clamped to fire when UserTimeout runs out.
//   - busy, UserTimeout == 0: tcp_retries2 retransmissions, modelled from
//     TCP_RTO_MIN as the kernel does (RetriesTimeout(KernelRetries2)).
//   - idle, keepalive on, UserTimeout > 0: probes go out at Idle, then every
//     Interval; the connection ends at the first probe time, after at least
//     one probe, at which it has been silent for UserTimeout. Count is
//     ignored.
//   - idle, keepalive on, UserTimeout == 0: Idle + Count*Interval.
//   - idle, keepalive off: Never.
//
// The kernel acts on a timer tick, so a measured detection lies a few
// milliseconds after the bound, and a busy one up to one retransmission
// timeout after it (200 ms or more, depending on the path's RTT, which
// Bounds cannot know; it reports UserTimeout). Bounds assumes
// c is valid (see Validate); fields left Unchanged take Linux's sysctl
// defaults.
func (c Config) Bounds() (idle, busy time.Duration) {
	busy = c.UserTimeout
	if busy == 0 {
		busy = RetriesTimeout(KernelRetries2)
	}
	if !c.KeepAlive.Enable {
		return Never, busy
	}
	ka := c.KeepAlive
	idleT := orDefault(ka.Idle, defaultKeepAliveIdle, KernelKeepAliveIdle)
	intvl := orDefault(ka.Interval, defaultKeepAliveInterval, KernelKeepAliveInterval)
	if c.UserTimeout == 0 {
		count := ka.Count
		switch count {
		case 0:
			count = defaultKeepAliveCount
		case Unchanged:
			count = KernelKeepAliveCount
		}
		return idleT + time.Duration(count)*intvl, busy
	}
	// The keepalive timer fires at idle + k*intvl (k = 0, 1, ...), sending
	// probe k+1; it ends the connection at the first firing with at least
	// one probe out (k >= 1) and silence >= UserTimeout.
	k := int64(1)
	if rest := c.UserTimeout - idleT; rest > intvl {
		k = int64((rest + intvl - 1) / intvl)
	}
	return idleT + time.Duration(k)*intvl, busy
}

func orDefault(d, zero, unchanged time.Duration) time.Duration {
	switch d {
	case 0:
		return zero
	case Unchanged:
		return unchanged
	}
	return d
}

// RetriesTimeout is how long Linux retransmits unacknowledged data before it
// gives up when no TCP_USER_TIMEOUT is set: tcp_model_timeout() for the given
// net.ipv4.tcp_retries2, an exponential backoff from TCP_RTO_MIN (200 ms)
// capped at TCP_RTO_MAX (120 s). For the default of 15 it is 924.6 s; the
// abort itself comes at the next retransmission after that time.
func RetriesTimeout(retries2 int) time.Duration {
	if retries2 <= 0 {
		return 0
	}
	// linear_backoff_thresh = ilog2(TCP_RTO_MAX / TCP_RTO_MIN) = 9.
	thresh := 0
	for rtoMin<<(thresh+1) <= rtoMax {
		thresh++
	}
	if retries2 <= thresh {
		return time.Duration((int64(2)<<retries2)-1) * rtoMin
	}
	return time.Duration((int64(2)<<thresh)-1)*rtoMin + time.Duration(retries2-thresh)*rtoMax
}

// MinBudget is the smallest budget ForBudget can meet: keepalive counts in
// whole seconds, and an idle connection needs at least one second of
// silence before its first probe and one more for that probe to go
// unanswered.
const MinBudget = 2 * time.Second

// MaxBudget is the largest budget ForBudget accepts: the idle bound is
// TCP_KEEPIDLE plus probesPerBudget TCP_KEEPINTVL periods, each at most
// 32767 s.
const MaxBudget = MaxKeepAliveIdle + probesPerBudget*MaxKeepAliveInterval

// ErrBudget is wrapped by ForBudget's errors.
var ErrBudget = errors.New("ghostsock: budget cannot be met")

// probesPerBudget is how many keepalive probes ForBudget lets go unanswered
// before an idle connection ends: one lost probe is not a dead peer, since
// any answer resets the silence the kernel measures.
const probesPerBudget = 3

// ForBudget returns the Config whose worst-case detection of a vanished peer,
// idle or busy, is at most d (see Bounds), with both bounds equal to the
// largest whole number of seconds not above d.
//
// The user timeout and keepalive are chosen together: an idle connection is
// left alone for about half the budget, then probed three times at equal
// whole-second intervals (fewer below 4 s), and Count is set to the number of
// probes so that the idle bound holds even if something later clears the
// user timeout (grpc-go does, see package grpcdial). A larger budget is
// kinder to slow but live peers; below about 10 s a few lost probes in a
// row, on a lossy path, can end a live connection.
//
// d must lie between MinBudget and MaxBudget; otherwise the error wraps
// ErrBudget and says which limit.
func ForBudget(d time.Duration) (Config, error) {
	switch {
	case d <= 0:
		return Config{}, fmt.Errorf("%w: budget %v: must be positive", ErrBudget, d)
	case d < MinBudget:
		return Config{}, fmt.Errorf("%w: budget %v: must be at least %v (keepalive idle and interval are whole seconds, at least 1 s each)", ErrBudget, d, MinBudget)
	case d > MaxBudget:
		return Config{}, fmt.Errorf("%w: budget %v: must be at most %v (TCP_KEEPIDLE and TCP_KEEPINTVL are at most 32767 s)", ErrBudget, d, MaxBudget)
	}
	total := int64(d / time.Second) // whole seconds, >= 2
	probes := min(int64(probesPerBudget), total-1)
	intvl := max(1, total/(2*probes))
	idle := total - probes*intvl
	if maxIdle := int64(MaxKeepAliveIdle / time.Second); idle > maxIdle {
		// Longer intervals, rounded up, so that idle fits and the probes
		// still end exactly at total.
		intvl = (total - maxIdle + probes - 1) / probes
		idle = total - probes*intvl
	}
	c := Config{
		UserTimeout: time.Duration(idle+probes*intvl) * time.Second,
		KeepAlive: net.KeepAliveConfig{
			Enable:   true,
			Idle:     time.Duration(idle) * time.Second,
			Interval: time.Duration(intvl) * time.Second,
			Count:    int(probes),
		},
	}
	return c, c.Validate()
}
