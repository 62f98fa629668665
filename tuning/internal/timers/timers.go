package timers

import (
	"math"
	"time"
)

// Never is the bound of a case nothing detects: an idle connection with
// keepalive off.
const Never = time.Duration(math.MaxInt64)

// Linux's defaults, used where a socket leaves the kernel in charge.
const (
	KernelKeepAliveIdle     = 7200 * time.Second // net.ipv4.tcp_keepalive_time
	KernelKeepAliveInterval = 75 * time.Second   // net.ipv4.tcp_keepalive_intvl
	KernelKeepAliveCount    = 9                  // net.ipv4.tcp_keepalive_probes
	KernelRetries2          = 15                 // net.ipv4.tcp_retries2

	RTOMin    = 200 * time.Millisecond // TCP_RTO_MIN (include/net/tcp.h)
	RTOMax    = 120 * time.Second      // TCP_RTO_MAX, and the most TCP_RTO_MAX_MS takes
	MinRTOMax = time.Second            // the least TCP_RTO_MAX_MS takes
)

// LANRTO and LANRTOMax are the RTOs of a path whose round trip is under
// LANRTT: TCP_RTO_MIN plus the RTT and its variation, on a loaded host up
// to 300 ms.
const (
	LANRTO    = RTOMin
	LANRTOMax = 300 * time.Millisecond
	LANRTT    = 10 * time.Millisecond
)

// JiffyMax is the longest kernel tick the bounds allow for (HZ=100).
const JiffyMax = 10 * time.Millisecond

// HoldCheck is how often a writing connection's send hold reads TCP_INFO.
const HoldCheck = 10 * time.Millisecond

// Params are one socket's timings with every default resolved: keepalive
// fields as the kernel holds them, RTOMax 0 for the kernel's cap, PathRTO
// 0 for a LAN.
type Params struct {
	UserTimeout    time.Duration // 0: tcp_retries2 decides
	RTOMax         time.Duration
	PathRTO        time.Duration
	OutageGrace    time.Duration
	KeepAlive      bool
	Idle, Interval time.Duration
	Count          int
}

// Slack is how late a kernel timer armed d ahead may fire: the timer wheel
// files it, rounded up, in a level whose granularity is at most an eighth
// of d (kernel/time/timer.c, LVL_CLK_SHIFT 3), and the tick adds a jiffy.
func Slack(d time.Duration) time.Duration { return d/8 + JiffyMax }

// RTOCap is the cap on the RTO's backoff with TCP_RTO_MAX_MS at d: d, or
// TCP_RTO_MAX for 0.
func RTOCap(d time.Duration) time.Duration {
	if d == 0 {
		return RTOMax
	}
	return d
}

// PathRTOMax is the largest RTO p's bounds allow for.
func (p Params) PathRTOMax() time.Duration {
	if p.PathRTO == 0 {
		return LANRTOMax
	}
	return p.PathRTO
}

// Bounds is the worst case from a peer vanishing to the error, idle and
// busy, every timer firing as late as the wheel allows.
func Bounds(p Params) (idle, busy time.Duration) {
	idle, k, intvl := KeepAliveFirings(p)
	if idle != Never {
		idle += Slack(p.Idle) + time.Duration(k)*Slack(intvl)
	}
	if p.UserTimeout == 0 {
		return idle, RetriesTimeout(KernelRetries2) + RTOMax
	}
	for rto := LANRTO; rto <= p.PathRTOMax(); rto += p.rtoStep() {
		for _, pto := range p.probeTimes(rto) {
			last, abort := p.lastSend(rto, pto)
			worst := abort + Slack(pto) + Slack(rto) + Slack(abort-last)
			busy = max(busy, worst)
		}
	}
	return idle, busy
}

// Earliest is the nominal figures: no slack, no tail-loss probe and no RTO
// before the user timeout's clock starts.
func Earliest(p Params) (idle, busy time.Duration) {
	idle, _, _ = KeepAliveFirings(p)
	busy = p.UserTimeout
	if busy == 0 {
		busy = RetriesTimeout(KernelRetries2)
	}
	return idle, busy
}

// KeepAliveFirings is the nominal time at which an idle connection's
// keepalive timer ends it (Never with keepalive off), how many Interval
// periods follow the Idle one by then, and the Interval.
func KeepAliveFirings(p Params) (at time.Duration, k int64, intvl time.Duration) {
	if !p.KeepAlive {
		return Never, 0, 0
	}
	if p.UserTimeout == 0 {
		return p.Idle + time.Duration(p.Count)*p.Interval, int64(p.Count), p.Interval
	}
	// The timer fires at Idle + k*Interval (k = 0, 1, ...), sending probe
	// k+1; it ends the connection at the first firing with at least one
	// probe out (k >= 1) and silence >= UserTimeout (tcp_keepalive_timer).
	k = 1
	if rest := p.UserTimeout - p.Idle; rest > p.Interval {
		k = int64((rest + p.Interval - 1) / p.Interval)
	}
	return p.Idle + time.Duration(k)*p.Interval, k, p.Interval
}

// RetriesTimeout is tcp_model_timeout() for net.ipv4.tcp_retries2:
// exponential backoff from TCP_RTO_MIN capped at TCP_RTO_MAX.
func RetriesTimeout(retries2 int) time.Duration {
	if retries2 <= 0 {
		return 0
	}
	// linear_backoff_thresh = ilog2(TCP_RTO_MAX / TCP_RTO_MIN) = 9.
	thresh := 0
	for RTOMin<<(thresh+1) <= RTOMax {
		thresh++
	}
	if retries2 <= thresh {
		return time.Duration((int64(2)<<retries2)-1) * RTOMin
	}
	return time.Duration((int64(2)<<thresh)-1)*RTOMin + time.Duration(retries2-thresh)*RTOMax
}

// BaseRTO is a connection's RTO before backoff: rto itself while backoff
// is 0, else what tcp_set_rto computes from the RTT estimates (RTT plus the
// larger of four variations and TCP_RTO_MIN), since a backed-off RTO may be
// capped (TCP_RTO_MAX_MS) or not doubled at all (zero-window probes back
// off their own timer).
func BaseRTO(rto, rtt, rttvar time.Duration, backoff uint8) time.Duration {
	if backoff == 0 {
		return rto
	}
	return rtt + max(4*rttvar, RTOMin)
}

// RTOForRTT is the RTO after a first round-trip sample of rtt
// (tcp_rtt_estimator: the variation starts at half the sample, its floor
// TCP_RTO_MIN).
func RTOForRTT(rtt time.Duration) time.Duration {
	return rtt + max(2*rtt, RTOMin)
}

// Retransmissions lists what a busy connection sends once it loses
// everything on a path of RTO rto: the tail-loss probe at pto, the first
// RTO retransmission rto later, which starts the user timeout's clock,
// then intervals doubling to the cap; and the abort, UserTimeout after
// the first. Timer slack is left out; UserTimeout must be positive.
func Retransmissions(p Params, rto, pto time.Duration) (sends []time.Duration, abort time.Duration) {
	rtoMax := RTOCap(p.RTOMax)
	first := pto + rto
	abort = first + p.UserTimeout
	sends = []time.Duration{pto}
	for t, iv := first, 2*rto; t < abort; t, iv = t+min(iv, rtoMax), min(2*iv, rtoMax) {
		sends = append(sends, t)
	}
	return sends, abort
}

// OutageSurvived is the longest outage a busy connection surely survives:
// the smallest last send before the deadline over the path's RTOs and the
// probe's timings. Zero without a user timeout.
func OutageSurvived(p Params) time.Duration {
	if p.UserTimeout == 0 {
		return 0
	}
	survived := Never
	for rto := LANRTO; rto <= p.PathRTOMax(); rto += p.rtoStep() {
		for _, pto := range p.probeTimes(rto) {
			last, _ := p.lastSend(rto, pto)
			survived = min(survived, last)
		}
	}
	return survived
}

// lastSend is the last of Retransmissions' sends, and the abort, computed
// without listing the sends: the doubling phase step by step, the capped
// phase in one division.
func (p Params) lastSend(rto, pto time.Duration) (last, abort time.Duration) {
	rtoMax := RTOCap(p.RTOMax)
	t, iv := pto+rto, 2*rto
	abort = t + p.UserTimeout
	last = pto
	for ; t < abort && iv < rtoMax; t, iv = t+iv, 2*iv {
		last = t
	}
	if t < abort { // sends every rtoMax from t on
		last = t + (abort-t-1)/rtoMax*rtoMax
	}
	return last, abort
}

// probeTimes are the times, from the first lost byte, at which the
// tail-loss probe may go out: at once, or an RTO later (one segment in
// flight, a delayed ACK awaited); on a path longer than a LAN, or with an
// OutageGrace, also after a writer kept sending until the send hold
// started (an RTO, the grace and a HoldCheck after the last ACK), then
// 2 SRTT and 2 ms.
func (p Params) probeTimes(rto time.Duration) []time.Duration {
	if p.PathRTO == 0 && p.OutageGrace == 0 {
		return []time.Duration{0, rto}
	}
	srtt := LANRTT
	if p.PathRTO != 0 {
		srtt = p.PathRTO / 3
	}
	return []time.Duration{0, rto, rto + p.OutageGrace + 2*srtt + 2*time.Millisecond + HoldCheck}
}

// rtoStep is the step of the walk over RTOs: a millisecond on a LAN, and
// as many as keep the walk to about a thousand steps on a long path.
func (p Params) rtoStep() time.Duration {
	return max(time.Millisecond, (p.PathRTOMax()-LANRTO)/1000).Truncate(time.Millisecond)
}
