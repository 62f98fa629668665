package tuning

import (
	"fmt"
	"net"
	"time"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/guard"
	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// MinGuardTimeout is the smallest UserTimeout that Validate accepts without
// NoGuard: below it a live peer's probe answers, which the kernel cannot
// be made to send more often than once a second (MinRTOMax), could not be
// told from silence within the user timeout, so the guard that the default
// entry points place would find a vanished peer only within GuardBound,
// not UserTimeout. (Above it, a peer that vanishes with its window shut
// is found within GuardBound too, which its four unanswered probes make
// longer than the busy bound below a budget of 7 s.) A Config with
// NoGuard set may go below it; Guard then still guards it, within
// GuardBound.
const MinGuardTimeout = time.Second

// idleHoldsArmed reports whether an idle connection with c's keepalive is
// ended as soon with a user timeout of 0 as with ut (keepalive's Count
// ends it first: ForBudget's Configs, or keepalive off), so that when an
// armed guard disarms changes no bound.
func idleHoldsArmed(c Config, ut time.Duration) bool {
	c = c.keptSchedule()
	c.UserTimeout = ut
	with, _, _ := timers.KeepAliveFirings(c.timings())
	c.UserTimeout = 0
	without, _, _ := timers.KeepAliveFirings(c.timings())
	return without <= with
}

// guardSettings is what the guard takes from c, with k its socket options.
func (c Config) guardSettings(k sockopt.Options) guard.Settings {
	return guard.Settings{
		Options:  k,
		Stall:    c.StallTimeout,
		Armed:    idleHoldsArmed(c, c.UserTimeout),
		KeepIdle: c.keptSchedule().keepAliveIdle(),
	}
}

// guardParams are the guard's timings for c.
func (c Config) guardParams() guard.Params {
	return guard.NewParams(c.guardSettings(sockopt.Options{UserTimeout: c.UserTimeout, RTOMax: c.RTOMax}))
}

// GuardBound is the worst case, for a guarded connection, from a peer
// vanishing while data is queued or in flight (its window open or shut) to
// the writer's ETIMEDOUT: the busy bound of Bounds, or the guard's
// verdict (with the window shut, four zero-window probes unanswered in a
// row, seen within UserTimeout/8) plus one capped probe interval,
// whichever is larger. For ForBudget configs it is the busy bound from a
// budget of 7 s up; below, the shut window's verdict takes longer (6.18 s
// at ForBudget(5s), whose busy bound is 4.98 s; 5.93 s at 3 s): NoGuard
// gives the busy bound back, and lets the kernel cut a reader that pauses
// for UserTimeout. It assumes Linux 6.15 or later, where the guard caps the
// probe backoff with TCP_RTO_MAX_MS (at UserTimeout/8, at least 1 s,
// unless RTOMax is set); on older kernels probes back off to
// 120 s and a peer that vanishes during a long pause is found after two
// unanswered probes, up to about 4 minutes. An idle guarded connection
// follows Bounds' idle rule.
func (c Config) GuardBound() time.Duration {
	_, busy := c.Bounds()
	return max(busy, c.guardParams().VerdictBy())
}

// StallBound is the worst case from the last byte a live but stalled peer
// acknowledged to the writer's ETIMEDOUT under StallTimeout: the stall,
// two guard periods (the tick that sees the last progress, the tick that
// sees the stall), and one capped probe interval. Never, if StallTimeout
// is zero.
func (c Config) StallBound() time.Duration {
	if c.StallTimeout == 0 {
		return Never
	}
	p := c.guardParams()
	return c.StallTimeout + 2*p.Period + p.RTOMax + timers.Slack(p.RTOMax)
}

// GuardHolds is what Read reports for a guarded connection at rest, with
// nothing queued for the guard's linger (see Guard): c, with RTOMax the
// cap the guard sets (UserTimeout/8, at least 1 s, in tenths of a second)
// unless c sets one. While data it wrote is queued, and for the linger
// after (within a user timeout and a half of the last write), the guard
// holds UserTimeout at 0.
func (c Config) GuardHolds() Config {
	c.RTOMax = c.guardParams().RTOMax
	return c
}

// Guard sets c's options on conn, as Apply does, and returns it guarded:
// its writer survives a live peer that stops reading for any time (or for
// StallTimeout, if set), while a peer that vanishes with data queued is
// still detected within GuardBound, and an idle one within Bounds.
// Listen, WrapListener and DialFunc guard by default; Guard is for
// connections made some other way, and guards whatever NoGuard says.
//
// Why: with a user timeout, Linux ends a connection whose peer keeps its
// receive window shut for UserTimeout, although the peer answers every
// zero-window probe (tcp_probe_timer), and its clock for that outlives
// partial reopenings of the window. Raw TCP and HTTP/1.1 writers whose
// consumer may pause need the guard; gRPC and HTTP/2 do not (their
// transports keep reading and apply flow control per stream). While data
// is queued the guard holds TCP_USER_TIMEOUT at 0 and caps the probe
// backoff with TCP_RTO_MAX_MS, and it sets UserTimeout back once the peer
// is silent (see tuning/doc.go). It costs two atomic additions per write,
// one setsockopt when a write arms it and one when it disarms (within a
// user timeout and a half of the last write: see linger), and while data
// is queued a TCP_INFO read 10 ms after the arming, then at doubling
// intervals up to one every UserTimeout/8; an idle connection costs
// nothing.
//
// conn must be the *net.TCPConn itself, or a *Conn (which is then guarded
// in place and returned): the guard must see every byte written to the
// socket. A *tls.Conn or another wrapper is a *WrapperError (guard the
// connection beneath it). A UserTimeout below MinGuardTimeout (with
// NoGuard set, for Validate) is guarded too, but the guard cannot judge a
// silence within it: detection takes up to GuardBound.
// A UserTimeout of 0 leaves it nothing to protect: it rests. Linux only:
// elsewhere the error wraps errors.ErrUnsupported. Guard a connection
// before writing to it.
func (c Config) Guard(conn net.Conn) (*Conn, error) {
	o, err := c.compileGuard()
	if err != nil {
		return nil, err
	}
	r, err := reach(conn)
	switch {
	case err != nil:
		return nil, err
	case r.kit != nil && r.kit != conn, r.kit == nil && r.tcp != conn:
		return nil, &WrapperError{Type: fmt.Sprintf("%T", r.holder), Guard: true}
	}
	h, err := o.handle(conn, 0, guardAlways, false)
	if err != nil {
		return nil, err
	}
	return h.(*Conn), nil
}

// compileGuard is compile, on a platform the guard supports.
func (c Config) compileGuard() (kernelOptions, error) {
	o, err := c.compile()
	if err != nil {
		return kernelOptions{}, err
	}
	if !guardSupported {
		return kernelOptions{}, sockopt.Unsupported("Guard (needs TCP_INFO and Linux's zero-window rules)")
	}
	return o, nil
}

// GuardListener is WrapListener, guarding every TCP connection whatever
// NoGuard says; outside Linux every Accept returns an error wrapping
// errors.ErrUnsupported.
//
// Deprecated: leave NoGuard unset and use WrapListener, which guards
// wherever the guard applies.
func (c Config) GuardListener(ln net.Listener) net.Listener {
	o, err := c.compileGuard()
	return &listener{Listener: ln, opts: &o, err: err, mode: guardAlways}
}

// GuardDialContext is DialFunc, guarding every TCP connection whatever
// NoGuard says; a dial that returns a wrapper fails with a *WrapperError.
//
// Deprecated: leave NoGuard unset and use DialFunc, which guards wherever
// the guard applies.
func (c Config) GuardDialContext(dial DialContextFunc) DialContextFunc {
	return c.dialFunc(dial, guardAlways)
}
