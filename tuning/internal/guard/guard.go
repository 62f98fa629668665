// Package guard is the window guard: while a connection's data is queued
// it holds TCP_USER_TIMEOUT at 0, so that Linux's zero-window rule cannot
// cut a live peer that pauses reading, and it sets the configured timeout
// back once the peer falls silent or stalls, so that the kernel ends a
// vanished one on its own clocks. Why, and the proofs, are in tuning's
// package doc ("The window guard").
//
// It imports the standard library, internal/sockopt and timers; package
// tuning's Conn calls Begin and End around each write.
package guard

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"weak"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// Settings are what the guard takes from a Config, computed once.
type Settings struct {
	Options  sockopt.Options // the socket's; the guard holds UserTimeout at 0 while armed
	Stall    time.Duration   // StallTimeout; 0 sets no limit
	Armed    bool            // an idle connection's bound is the same with the user timeout at 0
	KeepIdle time.Duration   // keepalive's idle time, as the kernel holds it
}

// Cut is the last verdict by which a guard set the user timeout back.
type Cut uint8

const (
	CutNone    Cut = iota
	CutSilent      // the peer stopped answering
	CutStalled     // the peer answered, its window stayed shut past StallTimeout
)

// NewParams derives the guard's timings from s.
func NewParams(s Settings) Params {
	b := s.Options.UserTimeout
	r := s.Options.RTOMax
	if r == 0 {
		// Whole tenths of a second: a whole number of jiffies at any
		// common HZ, so that a read gives back what was set.
		r = min(max(timers.MinRTOMax, b/8), timers.RTOMax).Truncate(100 * time.Millisecond)
	}
	p := Params{Base: b, Period: b / 8, RTOMax: r, Probes: shutProbes, Stall: s.Stall, Capped: true}
	// Silence is judged as late as still lets the kernel act within the
	// user timeout (a tick, then one capped interval), so that an outage
	// during a pause is survived as long as the budget allows; and never
	// before a live peer has had one and a half capped probe intervals to
	// answer.
	p.Alive = max(r*3/2, b-p.Period-r-timers.Slack(r))
	p.Linger = linger(s, p.Period)
	p.Calm = p.Stall == 0 && s.Armed
	return p
}

// linger is how long an armed guard stays armed once nothing is queued,
// so that a connection whose requests come more often arms it once, not
// at each request: half the user timeout where the idle bound holds armed
// (s.Armed); else short enough that the configured timeout is back before
// keepalive's first probe, which comes KeepIdle after the emptying ACK, a
// tick late at most.
func linger(s Settings, period time.Duration) time.Duration {
	ut := s.Options.UserTimeout
	if s.Armed {
		return ut / 2
	}
	return max(0, min(ut/2, s.KeepIdle/2-period))
}

// Params are the guard's timings, derived once from its Settings.
type Params struct {
	Base   time.Duration // UserTimeout: held while idle, set again on a verdict
	Period time.Duration // between ticks while armed: Base/8
	RTOMax time.Duration // TCP_RTO_MAX_MS the guard holds the socket to
	Alive  time.Duration // the peer is alive while heard from within this
	Probes uint8         // and, while its window is shut, while fewer probes than this went unanswered in a row
	Linger time.Duration // how long an armed guard stays armed with nothing queued
	Stall  time.Duration // StallTimeout; 0 sets no limit
	Capped bool          // the kernel took RTOMax (Linux 6.15+)
	Calm   bool          // a calm sample may postpone the next tick (CalmAt)
}

// shutProbes is how many zero-window probes in a row must go unanswered
// before the guard judges a shut window's peer silent, with the probe
// backoff capped: at 2 % loss each way (4 % of round trips), a live peer
// loses four in a row once in 400,000 probes, where two come once in 600.
const shutProbes = 4

// uncapped adapts p to a kernel without TCP_RTO_MAX_MS: probes back off
// to 120 s, so a shut window's silence is judged by unanswered probes.
func (p *Params) uncapped() {
	p.Capped = false
	p.RTOMax = timers.RTOMax
	p.Alive = p.Base * 3 / 8
	p.Probes = 2
}

// VerdictBy is the latest time after the peer was last heard at which a
// tick has found it silent and the kernel has acted: alive, or with the
// window shut the probes the verdict waits for (each a capped interval,
// late by its slack) if longer, a period for the tick to come, and one
// capped probe or retransmission interval.
func (p Params) VerdictBy() time.Duration {
	silent := p.Alive
	if p.Capped {
		silent = max(silent, time.Duration(p.Probes)*(p.RTOMax+timers.Slack(p.RTOMax)))
	}
	return silent + p.Period + p.RTOMax + timers.Slack(p.RTOMax)
}

// tickState is what the guard remembers between ticks.
type tickState struct {
	heard    time.Time     // the peer's last ACK, or the arming if later
	progress time.Time     // the tick that saw bytesAcked move, or the arming
	acked    uint64        // bytesAcked as of progress
	ut       time.Duration // the user timeout the socket holds
	empty    time.Time     // since when the ticks have seen nothing queued; zero while data is
	lastIdle time.Time     // the last tick that saw nothing queued
	writes   uint64        // writes begun, as of the last tick
}

type action struct {
	ut   time.Duration // the user timeout the socket should hold while armed
	idle bool          // nothing queued for linger: the guard may disarm
	stop bool          // the connection is over
	cut  Cut           // why ut is the configured timeout again, if it is
}

// decide is one tick's decision, kept free of system calls so that its
// rules can be tested on their own.
func (p Params) decide(now time.Time, s sockopt.Info, st *tickState) action {
	if s.Closed() {
		return action{stop: true}
	}
	if heard := now.Add(-s.SinceACK); heard.After(st.heard) {
		st.heard = heard
	}
	if s.BytesAcked != st.acked {
		st.acked, st.progress = s.BytesAcked, now
	}
	if s.Empty() {
		if st.empty.IsZero() {
			st.empty = now
		}
		st.lastIdle = now
		return action{idle: now.Sub(st.empty) >= p.Linger}
	}
	// Data queued since a tick saw none was written after that tick: the
	// peer owes an answer for no longer, and has stalled no longer.
	st.empty = time.Time{}
	if st.lastIdle.After(st.heard) {
		st.heard = st.lastIdle
	}
	if st.lastIdle.After(st.progress) {
		st.progress = st.lastIdle
	}
	silent := now.Sub(st.heard) > p.Alive && (!s.Shut() || s.Probes >= p.Probes)
	stalled := p.Stall > 0 && now.Sub(st.progress) >= p.Stall
	switch {
	case silent:
		return action{ut: p.Base, cut: CutSilent}
	case stalled:
		return action{ut: p.Base, cut: CutStalled}
	}
	return action{} // 0 while the peer answers: no clock can end it
}

// The guard's state word: bit 0 armed, bits 1 to 15 writes in progress,
// bits 16 and up a count of writes begun. A tick disarms only with a
// compare-and-swap against the word it read before sampling, so a write
// that begins meanwhile keeps it armed.
const (
	guardArmed      = 1
	guardWriteBegin = 1<<16 | 1<<1
	guardWriteEnd   = ^uint64(1<<1 - 1) // adds -2: one write fewer in progress
	guardActiveMask = 1<<16 - 2
)

// Guard is one connection's window guard; New makes it, Close stops it.
type Guard struct {
	state atomic.Uint64
	// conn is weak so that the guard's timer never keeps the socket
	// alive: a connection dropped without Close is collected, its
	// cleanup stops the guard, and the runtime closes the socket.
	conn weak.Pointer[net.TCPConn]
	p    Params

	// lingering: armed with nothing queued, the next tick only at the
	// linger's end; the next write wakes it (wake).
	lingering atomic.Bool

	mu     sync.Mutex // serialises ticks, arming, reconfiguration and Close
	timer  *time.Timer
	due    time.Time     // when the next tick is scheduled
	next   time.Duration // until the next tick: from settle, doubling to p.Period
	st     tickState
	closed bool
	err    error // first failure, joined to write errors
	cut    Cut   // the last verdict that set the user timeout back
	ticks  int   // ticks run, for the tests
}

// Begin marks a write to rc beginning, arming the guard first if it was
// not: the user timeout is off before the data reaches the kernel.
func (g *Guard) Begin(rc syscall.RawConn) {
	if g.state.Add(guardWriteBegin)&guardArmed == 0 {
		g.arm(rc)
		return
	}
	if g.lingering.Load() && g.lingering.CompareAndSwap(true, false) {
		g.wake()
	}
}

// wake brings a lingering guard's next tick forward for the data a write
// queues: to alive from now, the first moment a silence can be judged
// (the data is younger than that), or a period with StallTimeout (a tick
// dates the progress StallBound counts from), and then a period apart.
func (g *Guard) wake() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.next = g.p.Period
	first := g.p.Alive
	if g.p.Stall > 0 {
		first = min(first, g.p.Period)
	}
	if g.due.IsZero() || time.Until(g.due) > first {
		g.scheduleLocked(first)
	}
}

// End marks the write Begin marked as done.
func (g *Guard) End() { g.state.Add(guardWriteEnd) }

// CalmAt tells an armed guard that a send hold's sample at t found nothing
// queued or in flight, just before a write that queues its data at once
// (tuning's holdWrites). Data queued since is younger than t, and was queued no
// later than the write after t, so no tick can judge it silent before
// t+alive: the next tick moves there if it was due sooner, a period apart
// after it, as after wake. A connection whose requests are answered as
// they come is then not ticked after its arming. Only where p.Calm: the
// idle bound holds armed, so the later disarm changes no bound, and no
// StallTimeout, whose ticks date the progress.
func (g *Guard) CalmAt(t time.Time) {
	if g.state.Load()&guardArmed == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.p.Calm || g.closed || g.st.ut != 0 || g.due.IsZero() {
		return // no tick to move, or a verdict in force that the next tick may lift
	}
	if t.After(g.st.lastIdle) {
		g.st.lastIdle = t
	}
	if due := t.Add(g.p.Alive); g.due.Before(due) {
		g.next = g.p.Period
		g.scheduleLocked(time.Until(due))
	}
}

// arm holds the user timeout at 0 and starts the ticks, unless a tick is
// already due. The first tick comes settle after the arming, and the
// interval doubles up to a period while data stays queued, so that a
// connection whose data is acknowledged at once holds its user timeout
// again within a few milliseconds (and an audit reads it back), while a
// busy one costs one TCP_INFO read a period.
func (g *Guard) arm(rc syscall.RawConn) {
	if g.state.Or(guardArmed)&guardArmed != 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.p.Base == 0 {
		// Closed, or no user timeout to protect (Apply set none): the
		// socket holds 0 already.
		g.disarm()
		return
	}
	now := time.Now()
	g.st.heard, g.st.progress = now, now
	g.st.empty, g.st.lastIdle = time.Time{}, time.Time{}
	g.lingering.Store(false)
	if !g.holdLocked(rc, 0) {
		return
	}
	g.next = min(settle, g.p.Period)
	g.scheduleLocked(g.next)
}

// settle is the first tick's delay after an arming: a few round trips
// on a LAN, and far below any period (a period is UserTimeout/8).
const settle = 10 * time.Millisecond

func (g *Guard) scheduleLocked(d time.Duration) {
	g.due = time.Now().Add(d)
	if g.timer == nil {
		g.timer = time.AfterFunc(d, g.tick)
		return
	}
	g.timer.Reset(d)
}

func (g *Guard) disarm() { g.state.And(^uint64(guardArmed)) }

func (g *Guard) tick() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.p.Base == 0 {
		g.disarm()
		return
	}
	tc := g.conn.Value()
	if tc == nil { // dropped without Close and collected
		g.closed = true
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		g.failLocked(err)
		return
	}
	g.due = time.Time{}
	g.ticks++
	v := g.state.Load()
	s, err := sockopt.Sample(rc)
	if err != nil {
		g.failLocked(err)
		return
	}
	if begun := v >> 16; begun != g.st.writes {
		// Written since the last tick: the linger counts from now.
		g.st.writes, g.st.empty = begun, time.Time{}
	}
	now := time.Now()
	a := g.p.decide(now, s, &g.st)
	switch {
	case a.stop:
		g.disarm()
		return
	case a.idle && v&guardActiveMask == 0 && g.state.CompareAndSwap(v, v&^guardArmed):
		// Disarmed: the configured timeout, for Bounds' idle rule.
		g.lingering.Store(false)
		g.holdLocked(rc, g.p.Base)
		return
	}
	if !g.holdLocked(rc, a.ut) {
		return
	}
	g.cut = a.cut
	if s.Empty() && v&guardActiveMask == 0 {
		// Lingering: nothing to judge until a write, which wakes it; the
		// next tick otherwise at the linger's end, to disarm.
		g.lingering.Store(true)
		if g.state.Load() == v { // no write began meanwhile
			g.scheduleLocked(max(settle, g.st.empty.Add(g.p.Linger).Sub(now)))
			return
		}
		g.lingering.Store(false)
	}
	g.next = min(2*g.next, g.p.Period)
	g.scheduleLocked(g.next)
}

// LastCut is the verdict, if any, on which the guard last let the kernel's
// clocks run while data was queued.
func (g *Guard) LastCut() Cut {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cut
}

// holdLocked makes the socket hold user timeout d, with a system call only
// if it holds another, and reports whether the guard goes on.
func (g *Guard) holdLocked(rc syscall.RawConn, d time.Duration) bool {
	if g.st.ut == d {
		return true
	}
	if err := sockopt.SetUserTimeout(rc, d); err != nil {
		g.failLocked(err)
		return false
	}
	g.st.ut = d
	return true
}

// failLocked stops the guard after a failed system call. A closed
// connection is no failure; anything else is kept and joined to the next
// write error, since the kernel may then end a live connection the guard
// could not protect.
func (g *Guard) failLocked(err error) {
	g.disarm()
	g.closed = true
	if g.err == nil && !errors.Is(err, net.ErrClosed) {
		g.err = fmt.Errorf("ghostsock: window guard stopped: %w", err)
	}
}

// Annotate joins the guard's own failure, if any, to a write error; a nil
// guard has none.
func (g *Guard) Annotate(err error) error {
	if g == nil || err == nil {
		return err
	}
	g.mu.Lock()
	gerr := g.err
	g.mu.Unlock()
	if gerr == nil {
		return err
	}
	return errors.Join(err, gerr)
}

// Close stops the guard for good: the connection is closed.
func (g *Guard) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.timer != nil {
		g.timer.Stop()
	}
}

// New makes the guard for tc, whose socket rc carries s's options: the
// probe backoff is capped (TCP_RTO_MAX_MS) unless s sets a cap, and the
// guard rests, holding s's user timeout.
func New(tc *net.TCPConn, rc syscall.RawConn, s Settings) (*Guard, error) {
	p := NewParams(s)
	if s.Options.RTOMax == 0 && p.Base != 0 { // else set already, with the other options
		switch err := sockopt.SetRTOMax(rc, p.RTOMax); {
		case errors.Is(err, sockopt.ErrNoProtoOpt):
			p.uncapped()
		case err != nil:
			return nil, err
		}
	}
	g := &Guard{conn: weak.Make(tc), p: p}
	g.st.ut = s.Options.UserTimeout
	return g, nil
}

// Reconfigure moves the guard, and the socket, to s: s's options are set,
// except that an armed guard still holds the user timeout at 0 until its
// next verdict, and the guard takes s's timings from its next tick on. A
// user timeout of 0 leaves the guard nothing to protect: it rests.
func (g *Guard) Reconfigure(rc syscall.RawConn, s Settings) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := NewParams(s)
	if !g.p.Capped {
		p.uncapped()
	}
	hold := p.Base
	if g.state.Load()&guardArmed != 0 && g.st.ut == 0 {
		hold = 0
	}
	set := s.Options
	set.UserTimeout = hold
	if err := sockopt.Control(rc, set.Set); err != nil {
		return err
	}
	if s.Options.RTOMax == 0 && p.Capped && p.Base != 0 {
		switch err := sockopt.SetRTOMax(rc, p.RTOMax); {
		case errors.Is(err, sockopt.ErrNoProtoOpt): // a kernel before 6.15, first seen now
			p.uncapped()
		case err != nil:
			return err
		}
	}
	g.p, g.st.ut = p, hold
	if hold == 0 && p.Base != 0 && !g.closed {
		// Armed: tick on the new period (the old one may have been longer).
		g.next = min(settle, p.Period)
		g.scheduleLocked(g.next)
	}
	return nil
}

// HeldTimeout is the user timeout the guard enforces: what Inspect reports
// for a guarded connection, whatever the socket holds while armed.
func (g *Guard) HeldTimeout() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.p.Base
}

// Ticks reports the ticks run and whether the guard is armed, for tests.
func (g *Guard) Ticks() (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ticks, g.state.Load()&guardArmed != 0
}
