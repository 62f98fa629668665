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

// LANRTO and LANRTOMax are the range of retransmission timeouts Bounds
// and OutageSurvived assume: a path with a round-trip time under 10 ms,
// whose RTO is TCP_RTO_MIN (200 ms) plus the RTT and its variation, on a
// loaded host up to 300 ms. On a longer path the RTO is about RTT + 200 ms
// or more, and the figures grow with it.
const (
	LANRTO    = rtoMin
	LANRTOMax = 300 * time.Millisecond
)

// Retransmissions returns what a busy connection with c sends once it
// loses everything from its first unacknowledged byte on, on a path whose
// RTO is rto, counted from that byte: a tail-loss probe pto after it
// (tcp_schedule_loss_probe: 2 SRTT with several segments in flight, up to
// the RTO with one), the first RTO retransmission rto after the probe,
// which starts the user timeout's clock (retrans_stamp), then
// retransmissions whose interval doubles up to RTOMax; and when the kernel
// aborts: UserTimeout after the first RTO retransmission, the timer
// clamped to fire then (tcp_clamp_rto_to_user_timeout). Timer slack is
// left out. UserTimeout must be positive.
func (c Config) Retransmissions(rto, pto time.Duration) (sends []time.Duration, abort time.Duration) {
	rtoMax := c.RTOMax
	if rtoMax == 0 {
		rtoMax = MaxRTOMax
	}
	first := pto + rto
	abort = first + c.UserTimeout
	sends = []time.Duration{pto}
	for t, iv := first, 2*rto; t < abort; t, iv = t+min(iv, rtoMax), min(2*iv, rtoMax) {
		sends = append(sends, t)
	}
	return sends, abort
}

// OutageSurvived is the longest outage, from the first byte it loses, that
// a busy connection surely survives with c: the outage must end before the
// last retransmission the kernel sends ahead of its deadline, which then
// gets through. It is the smallest such time over the RTOs of a LAN path
// (LANRTO to LANRTOMax) and either timing of the tail-loss probe, because
// the schedule is knife-edged: with UserTimeout 3 s and an RTO of 200 ms
// the fourth retransmission leaves at 3.2 s, just ahead of the deadline,
// with 215 ms it would come after it and the last one leaves at 1.7 s.
//
// For UserTimeout 3 s it is 1.5 s without RTOMax and 2.4 s with RTOMax 1 s;
// for 10 s, 6.2 s and 9.4 s: a cap makes retransmissions keep coming, so
// the figure approaches UserTimeout. Zero without a UserTimeout (then
// net.ipv4.tcp_retries2 decides). Guarded connections hold RTOMax at the
// guard's cap (see GuardHolds) on Linux 6.15 and later.
func (c Config) OutageSurvived() time.Duration {
	if c.UserTimeout == 0 {
		return 0
	}
	survived := Never
	for rto := LANRTO; rto <= LANRTOMax; rto += time.Millisecond {
		for _, pto := range []time.Duration{0, rto} {
			sends, _ := c.Retransmissions(rto, pto)
			survived = min(survived, sends[len(sends)-1])
		}
	}
	return survived
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
