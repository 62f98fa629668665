package tuning

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// Never is what Bounds returns for a case the Config does not detect at
// all: an idle connection with keepalive off.
const Never = timers.Never

// Assumptions Bounds makes where a Config leaves the kernel in charge. They
// are Linux's defaults; a host whose sysctls differ gets other figures.
const (
	// KernelKeepAliveIdle, KernelKeepAliveInterval and KernelKeepAliveCount
	// are net.ipv4.tcp_keepalive_time, _intvl and _probes as Linux ships
	// them, used for fields set to Unchanged.
	KernelKeepAliveIdle     = timers.KernelKeepAliveIdle
	KernelKeepAliveInterval = timers.KernelKeepAliveInterval
	KernelKeepAliveCount    = timers.KernelKeepAliveCount

	// KernelRetries2 is net.ipv4.tcp_retries2 as Linux ships it, used when
	// UserTimeout is zero.
	KernelRetries2 = timers.KernelRetries2
)

// Bounds returns the worst-case time from a peer vanishing (no FIN, no RST,
// every packet lost) to the error the socket reports, for an idle connection
// and for a busy one (data sent and unacknowledged), on a path whose RTO is
// at most PathRTO: by default a LAN, a round-trip time under 10 ms, so
// that the RTO is at most LANRTOMax. It
// follows Linux's timers (net/ipv4/tcp_timer.c), as tuning/doc.go sets out,
// and counts every timer as firing as late as the timer wheel allows
// (an eighth of its interval, plus a tick):
//
//   - busy, UserTimeout > 0: UserTimeout after the first RTO
//     retransmission, which comes a tail-loss probe and an RTO after the
//     first lost byte, each taken as up to PathRTO (Retransmissions), the
//     probe up to OutageGrace later.
//   - busy, UserTimeout == 0: tcp_retries2 retransmissions: past the
//     threshold tcp_model_timeout computes (RetriesTimeout), at the next
//     RTO expiry, up to TCP_RTO_MAX (120 s) later.
//   - idle, keepalive on, UserTimeout > 0: probes go out at Idle, then every
//     Interval; the connection ends at the first probe time, after at least
//     one probe, at which it has been silent for UserTimeout. Count is
//     ignored. Each firing may be late, and the next is armed from it.
//   - idle, keepalive on, UserTimeout == 0: Idle + Count*Interval, late
//     likewise.
//   - idle, keepalive off: Never.
//
// The busy figure holds for any writer on a Conn, which stops feeding a
// silent peer so that the kernel's first RTO is not postponed (the send
// hold), and for a bare *net.TCPConn (Dialer, Control) only if its writer
// pauses for a tail-loss probe's interval or fills its window: see
// "Writers that stream" in the package doc.
//
// On a path slower than PathRTO says the busy figure grows by about twice
// the difference between the path's RTO (RTT + 200 ms or more; three RTTs
// after the handshake, RTOForRTT) and PathRTO; the idle one does not
// change. ForBudgetOnPath states the path; Snapshot.SlowPath and
// EventSlowPath tell a connection outside it. Earliest gives the other end
// of the window. Bounds
// assumes c is valid (see Validate); fields left Unchanged take Linux's
// sysctl defaults.
func (c Config) Bounds() (idle, busy time.Duration) { return timers.Bounds(c.timings()) }

// Earliest returns the earliest time after a peer's last packet at which
// the kernel can report it gone, for an idle and for a busy connection:
// the nominal timer figures, with no slack, no tail-loss probe and no RTO
// before the user timeout's clock starts. Between Earliest and Bounds lies
// every detection; one before Earliest means something else ended the
// connection.
func (c Config) Earliest() (idle, busy time.Duration) { return timers.Earliest(c.timings()) }

// keepAliveCount is KeepAlive.Count as the kernel holds it.
func (c Config) keepAliveCount() int {
	switch c.KeepAlive.Count {
	case 0:
		return defaultKeepAliveCount
	case Unchanged:
		return KernelKeepAliveCount
	}
	return c.KeepAlive.Count
}

// countForUserTimeout lowers KeepAlive.Count to the probes at which c's
// user timeout ends an idle connection, where c sets the count and its
// schedule. The count applies only while the user timeout is 0
// (tcp_keepalive_timer), as the guard holds it for a while after each
// write (guardLinger, which is short unless keepalive alone ends an idle
// connection as soon). A Lean Config's kept schedule counts too.
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

// timings is c for package timers: the keepalive fields as the kernel
// holds them.
func (c Config) timings() timers.Params {
	return timers.Params{
		UserTimeout: c.UserTimeout,
		RTOMax:      c.RTOMax,
		PathRTO:     c.PathRTO,
		OutageGrace: c.OutageGrace,
		KeepAlive:   c.KeepAlive.Enable,
		Idle:        c.keepAliveIdle(),
		Interval:    orDefault(c.KeepAlive.Interval, defaultKeepAliveInterval, KernelKeepAliveInterval),
		Count:       c.keepAliveCount(),
	}
}

func (c Config) keepAliveIdle() time.Duration {
	return orDefault(c.KeepAlive.Idle, defaultKeepAliveIdle, KernelKeepAliveIdle)
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
func RetriesTimeout(retries2 int) time.Duration { return timers.RetriesTimeout(retries2) }

// LANRTO and LANRTOMax are the range of retransmission timeouts Bounds
// and OutageSurvived assume unless Config.PathRTO says otherwise: a path
// with a round-trip time under 10 ms, whose RTO is TCP_RTO_MIN (200 ms)
// plus the RTT and its variation, on a loaded host up to 300 ms. On a
// longer path the RTO is about RTT + 200 ms or more, and the figures grow
// with it (ForBudgetOnPath).
const (
	LANRTO    = timers.LANRTO
	LANRTOMax = timers.LANRTOMax
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
	return timers.Retransmissions(c.timings(), rto, pto)
}

// OutageSurvived is the longest outage, from the first byte it loses, that
// a busy connection surely survives with c: the outage must end before the
// last retransmission the kernel sends ahead of its deadline, which then
// gets through. It is the smallest such time over the RTOs of a LAN path
// (LANRTO to LANRTOMax) and either timing of the tail-loss probe, because
// the schedule is knife-edged: with UserTimeout 3 s and an RTO of 200 ms
// the fourth retransmission leaves at 3.2 s, just ahead of the deadline,
// with 215 ms it would come after it and the last one leaves at 1.7 s. A
// longer outage is often survived too (the clamped last timer may fire a
// hair early and send once more), but not surely.
//
// For UserTimeout 3 s it is 1.5 s without RTOMax and 2.4 s with RTOMax 1 s;
// for 10 s, 6.2 s and 9.4 s: a cap makes retransmissions keep coming, so
// the figure approaches UserTimeout. Zero without a UserTimeout (then
// net.ipv4.tcp_retries2 decides). Guarded connections hold RTOMax at the
// guard's cap (see GuardHolds) on Linux 6.15 and later.
func (c Config) OutageSurvived() time.Duration { return timers.OutageSurvived(c.timings()) }

// pathRTO is the largest RTO c's bounds allow for.
func (c Config) pathRTO() time.Duration { return c.timings().PathRTOMax() }

// RTOForRTT is the retransmission timeout Linux gives a connection after
// its first round-trip sample of rtt (tcp_rtt_estimator: the variation
// starts at half the sample, and its floor is TCP_RTO_MIN): rtt plus the
// larger of 2 rtt and 200 ms. Later samples of a steady path bring it down
// towards rtt + 200 ms; jitter and a queue that fills push it up again.
// It is the PathRTO ForBudgetOnPath gives a path whose round trip stays
// under rtt.
func RTOForRTT(rtt time.Duration) time.Duration { return timers.RTOForRTT(rtt) }

// ForBudgetOnPath is ForBudget for a path whose round-trip time stays
// under rtt (a phone on a cellular network: 50 to 600 ms): the same idle
// schedule (KeepAlive.Count at most the probes the user timeout allows),
// PathRTO set to RTOForRTT(rtt) (at least LANRTOMax), and the
// user timeout cut so that the busy worst case on that path still fits d:
// the send hold's start an RTO after the last ACK, a tail-loss probe 2
// SRTT later, and the first RTO, each RTO up to PathRTO (see probeTimes).
// A round trip within a LAN's 10 ms gives ForBudget's Config. A path slower
// than d allows is refused: the error wraps ErrBudget and names the
// smallest budget that fits, when the user timeout left would be shorter
// than three of the path's RTOs (a live connection would then be cut by
// one lost retransmission and its backoff).
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

// WithOutageGrace returns c with OutageGrace g and its user timeout cut
// until the busy bound is no longer than c's (and KeepAlive.Count, if
// need be, to the probes that user timeout allows): a stream then recovers from
// outages shorter than g as a bare socket does, and a longer outage is
// survived for less (OutageSurvived). The error wraps ErrBudget if the
// user timeout left would be under three of c's path RTOs (see
// ForBudgetOnPath), ErrInvalidConfig if c or g is out of range.
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

// MaxBudget is the largest budget ForBudget accepts: the idle bound is
// TCP_KEEPIDLE plus probesPerBudget TCP_KEEPINTVL periods, each at most
// 32767 s.
const MaxBudget = MaxKeepAliveIdle + probesPerBudget*MaxKeepAliveInterval

// ErrBudget is wrapped by ForBudget's errors.
var ErrBudget = errors.New("ghostsock: budget cannot be met")

// probesPerBudget is how many keepalive probes ForBudget lets go unanswered
// before an idle connection ends, where the budget allows: one lost probe
// is not a dead peer, since any answer resets the silence the kernel
// measures.
const probesPerBudget = 3

// ForBudget returns the Config whose worst-case detection of a vanished peer,
// idle and busy, is at most d on a LAN path (see Bounds: the tail-loss
// probe, the first RTO and the timer wheel's lateness included).
//
// The user timeout and keepalive are chosen together: an idle connection is
// left alone for about half the budget, then probed up to three times at
// equal whole-second intervals (fewer below 5 s), with the idle time cut
// until the probes' worst case fits; UserTimeout is the nominal time of the
// last probe, or less if the busy worst case needs it. Count is the number
// of probes, so that the idle bound holds even if something later clears
// the user timeout (grpc-go does, see package grpcdial). The nominal figures
// (Earliest) therefore lie below d: UserTimeout 2 s for a 3 s budget, 13 s
// for 15 s, 17 s for 20 s. A larger budget is kinder to slow but live
// peers; below about 10 s a few lost probes in a row, on a lossy path, can
// end a live connection. It is kinder to the host too: every idle
// connection probes once an Interval, so a fleet sends connections /
// Interval probes a second, in bursts (connections opened together have
// their timers filed together in the kernel's timer wheel). Through a veth
// every packet passes the receiving CPU's input backlog
// (net.core.netdev_max_backlog); a burst past it is lost, and on a 2-core
// VM 100,000 connections at 5 s lost enough probes with the default backlog
// of 1,000 that the kernel cut live connections, and none with 4,096
// (ghostbench part 4; the README's "Many connections on one host" gives
// the rule).
//
// d must lie between MinBudget and MaxBudget; otherwise the error wraps
// ErrBudget and says which limit.
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
