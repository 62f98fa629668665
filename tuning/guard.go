package tuning

import (
	"fmt"
	"net"
	"time"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/guard"
	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// guardParams are the guard's timings for c.
func (c Config) guardParams() guard.Params {
	return guard.NewParams(c.guardSettings(sockopt.Options{UserTimeout: c.UserTimeout, RTOMax: c.RTOMax}))
}

// GuardBound is the worst case, for a guarded connection, from a peer
// vanishing while data is queued or in flight (its window open or shut) to
// the writer's ETIMEDOUT: the larger of Bounds' busy figure and the guard's
// verdict (with the window shut, four zero-window probes unanswered in a
// row) plus one capped probe interval. For ForBudget's Configs it is the
// busy figure from a budget of 7 s up; ForBudget(5s) gives 6.175 s against
// a busy figure of 4.98 s. It assumes Linux 6.15 or later; before, a peer
// that vanishes during a long pause can take minutes (see "The window
// guard" in the package doc). An idle guarded connection follows Bounds.
func (c Config) GuardBound() time.Duration {
	_, busy := c.Bounds()
	return max(busy, c.guardParams().VerdictBy())
}

// StallBound is the worst case from the last byte a live but stalled peer
// acknowledged to the writer's ETIMEDOUT under StallTimeout: the stall, two
// guard periods (UserTimeout/8 each) and one capped probe interval. Never
// if StallTimeout is zero.
func (c Config) StallBound() time.Duration {
	if c.StallTimeout == 0 {
		return Never
	}
	p := c.guardParams()
	return c.StallTimeout + 2*p.Period + p.RTOMax + timers.Slack(p.RTOMax)
}

// GuardHolds is what Read reports for a guarded connection at rest: c,
// with RTOMax the cap the guard sets (UserTimeout/8, 1 s to 120 s, in
// tenths of a second) unless c sets one. While data written is queued, and
// for a linger after (within a user timeout and a half of the last write),
// the guard holds UserTimeout at 0.
func (c Config) GuardHolds() Config {
	c.RTOMax = c.guardParams().RTOMax
	return c
}

// Guard sets c's options on conn, as Apply does, and returns it guarded: a
// live peer that stops reading keeps its connection while it answers probes
// (until StallTimeout, if set), a peer that vanishes with data queued is
// found within GuardBound, an idle one within Bounds. Listen, WrapListener
// and DialFunc guard by default; Guard is for connections made otherwise,
// and guards whatever NoGuard says. Why, and what it costs: "The window
// guard" in the package doc. conn must be the *net.TCPConn itself or a *Conn
// (guarded in place); a wrapper is a *WrapperError. Guard it before writing.
// With a UserTimeout of 0 the guard rests. Linux only: elsewhere the error
// wraps errors.ErrUnsupported.
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
