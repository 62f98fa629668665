package tuning

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// Bounds returns the worst-case time from a peer vanishing (no FIN, no RST,
// every packet lost) to the error the socket reports, for an idle connection
// and for a busy one (data sent and unacknowledged), every kernel timer
// firing as late as it may. It applies the table and rules of "The kernel's
// rules" in the package doc, on a path whose RTO is at most PathRTO (a LAN by
// default; on a slower path the busy figure grows, Rule 7). The idle figure
// is Never with keepalive off. The busy one holds for a Conn's writes, and
// for a bare *net.TCPConn's only if its writer pauses (see "Writers that
// stream"). c must be valid (Validate); fields left Unchanged take Linux's
// defaults (KernelKeepAliveIdle and the rest). Earliest is the other end.
func (c Config) Bounds() (idle, busy time.Duration) { return timers.Bounds(c.timings()) }

// Earliest returns the earliest time after a peer's last packet at which
// the kernel can report it gone, idle and busy: the nominal timer figures,
// with no slack, no tail-loss probe and no RTO before the user timeout's
// clock starts. Every detection lies between Earliest and Bounds; one
// before Earliest means something else ended the connection.
func (c Config) Earliest() (idle, busy time.Duration) { return timers.Earliest(c.timings()) }

// countForUserTimeout lowers KeepAlive.Count to the probes at which c's
// user timeout ends an idle connection, where c sets the count and its
// schedule. The count applies only while the user timeout is 0 (Rule 2),
// as an armed guard holds it for its linger after each write. A Lean
// Config's kept schedule counts too.
func (c Config) countForUserTimeout() Config {
	ka := c.keptSchedule()
	if !ka.KeepAlive.Enable || c.UserTimeout == 0 ||
		c.KeepAlive.Count == Unchanged || c.KeepAlive.Idle == Unchanged || c.KeepAlive.Interval == Unchanged {
		return c
	}
	if _, k, _ := timers.KeepAliveFirings(ka.timings()); k < int64(c.keepAliveCount()) {
		c.KeepAlive.Count = int(k)
	}
	return c
}

// cutUserTimeout is c with the largest user timeout at most c's whose busy
// worst case fits d (0 if none does), and the keepalive count that user
// timeout allows (countForUserTimeout).
func (c Config) cutUserTimeout(d time.Duration) Config {
	c.UserTimeout = c.largestUserTimeout(d)
	return c.countForUserTimeout()
}

// RetriesTimeout is how long Linux retransmits unacknowledged data before it
// gives up when no TCP_USER_TIMEOUT is set: tcp_model_timeout() for the given
// net.ipv4.tcp_retries2, a backoff from TCP_RTO_MIN (200 ms) capped at
// TCP_RTO_MAX (120 s); 0 for retries2 <= 0. RetriesTimeout(15), Linux's
// default, is 924.6 s; the abort comes at the next RTO expiry after it.
func RetriesTimeout(retries2 int) time.Duration { return timers.RetriesTimeout(retries2) }

// Retransmissions returns what a busy connection with c sends once it
// loses everything from its first unacknowledged byte on, on a path whose
// RTO is rto, counted from that byte: the tail-loss probe at pto, the first
// RTO retransmission rto after it, which starts the user timeout's clock,
// then retransmissions whose interval doubles up to RTOMax; and the abort,
// UserTimeout after that first RTO retransmission (Rules 1 and 6 in the
// package doc). Timer slack is left out. UserTimeout must be positive.
func (c Config) Retransmissions(rto, pto time.Duration) (sends []time.Duration, abort time.Duration) {
	return timers.Retransmissions(c.timings(), rto, pto)
}

// OutageSurvived is the longest outage, from the first byte it loses, that
// a busy connection surely survives with c: one that ends before the last
// retransmission ahead of the deadline, the earliest such over the RTOs
// from LANRTO to PathRTO (LANRTOMax if 0) and every tail-loss probe time,
// as the schedule is knife-edged (Rule 6 in the package doc). A longer
// outage is often survived, but not surely. An RTOMax brings it towards
// UserTimeout; a guarded connection holds the guard's cap (GuardHolds).
// Zero without a UserTimeout.
func (c Config) OutageSurvived() time.Duration { return timers.OutageSurvived(c.timings()) }

// RTOForRTT is the retransmission timeout Linux gives a connection after
// its first round-trip sample of rtt (tcp_rtt_estimator): rtt plus the
// larger of 2 rtt and 200 ms. Later samples of a steady path bring it down
// towards rtt + 200 ms (Rule 7 in the package doc). ForBudgetOnPath sets it
// as PathRTO.
func RTOForRTT(rtt time.Duration) time.Duration { return timers.RTOForRTT(rtt) }

// ForBudgetOnPath is ForBudget for a path whose round-trip time stays
// under rtt (a phone on a cellular network, say): the same keepalive
// schedule, PathRTO set to RTOForRTT(rtt) (at least LANRTOMax), and the
// user timeout, with KeepAlive.Count, cut until the busy bound on that path
// fits d (Rule 7 in the package doc). An rtt within a LAN's 10 ms gives
// ForBudget(d). The error wraps ErrBudget for an rtt that is not positive
// or whose RTO passes MaxRTOMax, and for a path too slow for d (the user
// timeout left would be under three of its RTOs), naming the smallest
// budget that fits.
func ForBudgetOnPath(d, rtt time.Duration) (Config, error) {
	switch {
	case rtt <= 0:
		return Config{}, fmt.Errorf("%w: round trip %v: must be positive", ErrBudget, rtt)
	case rtt <= timers.LANRTT:
		return ForBudget(d) // a LAN: Bounds' own assumption
	}
	rto := max(RTOForRTT(rtt), LANRTOMax).Round(time.Millisecond)
	if rto > MaxRTOMax {
		return Config{}, fmt.Errorf("%w: round trip %v: its RTO %v is past the kernel's cap %v", ErrBudget, rtt, rto, MaxRTOMax)
	}
	c, err := onPath(d, rto)
	if err != nil || c.UserTimeout != 0 {
		return c, err
	}
	// Too slow: find the smallest whole-second budget that fits.
	for least := d.Truncate(time.Second) + time.Second; least <= MaxBudget; least += time.Second {
		if c, err := onPath(least, rto); err == nil && c.UserTimeout != 0 {
			return Config{}, fmt.Errorf("%w: budget %v on a %v round trip (RTO up to %v) leaves a user timeout under three RTOs, so that one lost retransmission would end a live connection; the smallest budget for this path is %v",
				ErrBudget, d, rtt, rto, least)
		}
	}
	return Config{}, fmt.Errorf("%w: round trip %v: no budget fits it", ErrBudget, rtt)
}

// onPath is ForBudget(d) with PathRTO rto and the largest user timeout
// that fits d there; its UserTimeout is 0 if that is under three RTOs.
func onPath(d, rto time.Duration) (Config, error) {
	c, err := ForBudget(d)
	if err != nil {
		return Config{}, err
	}
	c.PathRTO = rto
	if c = c.cutUserTimeout(d); c.UserTimeout < 3*rto {
		return Config{}, nil
	}
	return c, c.Validate()
}

// WithOutageGrace returns c with OutageGrace g and its user timeout (with
// KeepAlive.Count, if need be) cut until the busy bound is no longer than
// c's: a stream then recovers from outages shorter than g as a bare socket
// does, and survives longer ones for less (OutageSurvived). The error wraps
// ErrBudget if the user timeout left would be under three of c's path RTOs,
// under g or under MinGuardTimeout; ErrInvalidConfig if c is invalid, or g
// negative or set without a user timeout.
func (c Config) WithOutageGrace(g time.Duration) (Config, error) {
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	_, busy := c.Bounds()
	c.OutageGrace = g
	if g <= 0 || c.UserTimeout == 0 {
		return c, c.Validate()
	}
	if c = c.cutUserTimeout(busy); c.UserTimeout < 3*c.pathRTO() || c.UserTimeout < g {
		return Config{}, fmt.Errorf("%w: an OutageGrace of %v within a busy bound of %v leaves a user timeout of %v, under three RTOs (%v) or under the grace: take a shorter grace or a larger budget",
			ErrBudget, g, busy, c.UserTimeout, 3*c.pathRTO())
	}
	if err := c.Validate(); err != nil {
		// The user timeout left is under MinGuardTimeout.
		return Config{}, fmt.Errorf("%w: an OutageGrace of %v within a busy bound of %v: %w", ErrBudget, g, busy, err)
	}
	return c, nil
}

// MinBudget is the smallest budget ForBudget can meet: keepalive counts in
// whole seconds, so an idle connection needs a second of silence before
// its first probe and one more for that probe to go unanswered, and both
// timers may fire an eighth late.
const MinBudget = 3 * time.Second

// MaxBudget is the largest budget ForBudget accepts: the idle bound is Idle
// plus three Interval periods, each at most 32767 s.
const MaxBudget = MaxKeepAliveIdle + probesPerBudget*MaxKeepAliveInterval

// ErrBudget is wrapped by the errors of ForBudget, ForBudgetOnPath,
// ForBudgetWithIdleLimit and WithOutageGrace for a budget they cannot meet.
var ErrBudget = errors.New("ghostsock: budget cannot be met")

// probesPerBudget is how many keepalive probes ForBudget lets go unanswered
// before an idle connection ends, where the budget allows: one lost probe
// is not a dead peer, since any answer resets the silence the kernel
// measures.
const probesPerBudget = 3

// ForBudget returns the Config whose worst-case detection of a vanished
// peer, idle and busy, is at most d on a LAN path (Bounds). An idle
// connection is left alone for about half of d, then probed up to three
// times at equal whole-second intervals; Count is the number of probes, so
// that the idle bound holds even where the user timeout is cleared (Rule 2
// in the package doc), and UserTimeout the nominal time of the last probe,
// or less if the busy bound needs it: ForBudget(3s) sets 2 s, ForBudget(20s)
// 17 s. A larger budget is kinder to live peers on lossy paths, and to the
// host (Rule 3). d must lie between MinBudget and MaxBudget; otherwise the
// error wraps ErrBudget and says which limit.
func ForBudget(d time.Duration) (Config, error) { return forBudget(d, MaxKeepAliveIdle) }

// forBudget is ForBudget with keepalive idle and interval at most most.
func forBudget(d, most time.Duration) (Config, error) {
	switch {
	case d <= 0:
		return Config{}, fmt.Errorf("%w: budget %v: must be positive", ErrBudget, d)
	case d < MinBudget:
		return Config{}, fmt.Errorf("%w: budget %v: must be at least %v (keepalive idle and interval are whole seconds, at least 1 s each, and may fire an eighth late)", ErrBudget, d, MinBudget)
	case d > MaxBudget:
		return Config{}, fmt.Errorf("%w: budget %v: must be at most %v (TCP_KEEPIDLE and TCP_KEEPINTVL are at most 32767 s)", ErrBudget, d, MaxBudget)
	}
	total := int64(d / time.Second) // whole seconds, >= 3
	maxIdle := int64(most / time.Second)
	limited := most < MaxKeepAliveIdle
	// Half the budget in probes, at most 3 of them, unless an idle limit
	// caps the interval: then as many as it takes.
	probes := min(int64(probesPerBudget), total-1)
	if limited {
		probes = max(probes, min((total/2+maxIdle-1)/maxIdle, MaxKeepAliveCount))
	}
	for ; probes >= 1; probes-- {
		intvl := min(max(1, total/(2*probes)), maxIdle)
		// The worst idle case is idle*9/8 + probes*intvl*9/8 + (probes+1)
		// ticks: start from the largest whole idle that can fit, and step
		// down past rounding.
		slack := time.Duration(probes+1) * timers.JiffyMax
		room := d - slack - time.Duration(probes*intvl)*time.Second*9/8
		idle := min(int64(room*8/9/time.Second), maxIdle)
		if !limited && idle > maxIdle-1 && total-probes*intvl > maxIdle {
			// Longer intervals, rounded up, so that idle fits.
			intvl = (total - maxIdle + probes - 1) / probes
		}
		for ; idle >= 1; idle-- {
			c := Config{KeepAlive: net.KeepAliveConfig{
				Enable:   true,
				Idle:     time.Duration(idle) * time.Second,
				Interval: time.Duration(intvl) * time.Second,
				Count:    int(probes),
			}}
			c.UserTimeout = time.Duration(idle+probes*intvl) * time.Second
			if ib, _ := c.Bounds(); ib > d {
				continue
			}
			if c = c.cutUserTimeout(d); c.UserTimeout == 0 {
				continue
			}
			return c, c.Validate()
		}
	}
	return Config{}, fmt.Errorf("%w: budget %v: no keepalive schedule fits it", ErrBudget, d)
}

// largestUserTimeout returns the largest UserTimeout, in whole
// milliseconds and at most c's, whose busy worst case fits d with c's
// other fields, or 0 if none does. The busy bound grows with the user
// timeout.
func (c Config) largestUserTimeout(d time.Duration) time.Duration {
	lo, hi := int64(0), int64(c.UserTimeout/time.Millisecond) // ms
	for lo < hi {
		mid := (lo + hi + 1) / 2
		c.UserTimeout = time.Duration(mid) * time.Millisecond
		if _, busy := c.Bounds(); busy <= d {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return time.Duration(lo) * time.Millisecond
}
