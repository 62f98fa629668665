package tuning

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

// The window guard.
//
// With TCP_USER_TIMEOUT set, Linux ends a connection whose peer keeps its
// receive window shut for the user timeout, although the peer answers
// every zero-window probe (tcp_probe_timer). The clock it uses,
// icsk_probes_tstamp, cannot be read from user space, and it does not
// restart when it should: a partial reopening of the window (tcp_ack_probe
// clears it only for a window that takes the whole head skb) and a send
// queue that drains with data in flight both leave it running, so a later
// shut window can be cut at its first probe. No estimate of that clock is
// safe. The guard therefore keeps the rule from ever applying to a live
// peer: while data is queued it holds TCP_USER_TIMEOUT at 0, and it sets
// the configured value back only when the peer falls silent (no ACK for
// alive) or stalls past StallTimeout; the kernel then ends the connection
// on its own clocks, which run from before the silence began.
//
// Three things make the verdict sound. TCP_RTO_MAX_MS (Linux 6.15+) caps
// the backoff of zero-window probes, so a live paused peer answers a probe
// at least every rtoMax (UserTimeout/8, at least 1 s). Since the
// zero-window clock may be older than the pause, the kernel ends the
// connection at its first probe after the verdict: so a shut window's
// verdict waits for guardProbes probes in a row unanswered (any ACK resets
// the count, tcp_ack), which a lossy path's live peer does not reach
// (at 4 % of round trips lost, once in 400,000 probes), where one lost
// answer used to be enough. Without the cap probes back off to 120 s and
// the verdict waits for two. And the kernel's retransmission clock starts
// no later than a probe and an RTO after the peer's last ACK (the send
// hold sees to it), so the configured timeout, once set on a connection
// with data in flight, ends it no later than Bounds says, however early
// the verdict. GuardBound is the later of the two.
//
// An idle connection costs nothing: the guard is disarmed and the socket
// holds the configured user timeout, so Bounds' idle rule is unchanged. A
// write that arms it costs one setsockopt; while data is queued it reads
// TCP_INFO once a period. Once the queue empties it lingers, armed, for
// linger (so that the next requests arm nothing) and reads nothing until a
// write wakes it, whose first look comes alive later (no silence can be
// judged sooner; a period later with StallTimeout, whose progress it
// dates). The linger counts from the first tick that saw no write since
// the last: alive, linger and a period after the last write, under a
// user timeout and a half from a user timeout of 2 s up. Where the idle
// bound holds armed and no StallTimeout is set, a send hold's sample that
// finds nothing queued or in flight, before a write that queues at once,
// moves the next tick to alive after it (calmAt), so requests answered as
// they come tick once, at the arming.

// guardParams are the guard's timings, derived once from the Config.
type guardParams struct {
	base   time.Duration // UserTimeout: held while idle, set again on a verdict
	period time.Duration // between ticks while armed: base/8
	rtoMax time.Duration // TCP_RTO_MAX_MS the guard holds the socket to
	alive  time.Duration // the peer is alive while heard from within this
	probes uint8         // and, while its window is shut, while fewer probes than this went unanswered in a row
	linger time.Duration // how long an armed guard stays armed with nothing queued
	stall  time.Duration // StallTimeout; 0 sets no limit
	capped bool          // the kernel took rtoMax (Linux 6.15+)
	calm   bool          // a calm sample may postpone the next tick (calmAt)
}

// guardProbes is how many zero-window probes in a row must go unanswered
// before the guard judges a shut window's peer silent, with the probe
// backoff capped: at 2 % loss each way (4 % of round trips), a live peer
// loses four in a row once in 400,000 probes, where two come once in 600.
const guardProbes = 4

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

func newGuardParams(o kernelOptions) guardParams {
	b := o.k.UserTimeout
	r := o.k.RTOMax
	if r == 0 {
		// Whole tenths of a second: a whole number of jiffies at any
		// common HZ, so that Read gives back what was set.
		r = min(max(MinRTOMax, b/8), MaxRTOMax).Truncate(100 * time.Millisecond)
	}
	p := guardParams{base: b, period: b / 8, rtoMax: r, probes: guardProbes, stall: o.stall, capped: true}
	// Silence is judged as late as still lets the kernel act within the
	// user timeout (a tick, then one capped interval), so that an outage
	// during a pause is survived as long as the budget allows; and never
	// before a live peer has had one and a half capped probe intervals to
	// answer.
	p.alive = max(r*3/2, b-p.period-r-timers.Slack(r))
	armed := idleHoldsArmed(o.config, b)
	p.linger = guardLinger(o.config, b, p.period, armed)
	p.calm = p.stall == 0 && armed
	return p
}

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

// guardLinger is how long an armed guard stays armed once nothing is queued,
// so that a connection whose requests come more often arms it once, not
// at each request: half the user timeout ut where the idle bound holds
// armed (idleHoldsArmed(c, ut)); else short enough that the configured
// timeout is back before keepalive's first probe, which comes
// KeepAlive.Idle after the emptying ACK, a tick late at most.
func guardLinger(c Config, ut, period time.Duration, armed bool) time.Duration {
	if armed {
		return ut / 2
	}
	return max(0, min(ut/2, c.keptSchedule().keepAliveIdle()/2-period))
}

// uncapped adapts p to a kernel without TCP_RTO_MAX_MS: probes back off
// to 120 s, so a shut window's silence is judged by unanswered probes.
func (p *guardParams) uncapped() {
	p.capped = false
	p.rtoMax = MaxRTOMax
	p.alive = p.base * 3 / 8
	p.probes = 2
}

// verdictBy is the latest time after the peer was last heard at which a
// tick has found it silent and the kernel has acted: alive, or with the
// window shut the probes the verdict waits for (each a capped interval,
// late by its slack) if longer, a period for the tick to come, and one
// capped probe or retransmission interval.
func (p guardParams) verdictBy() time.Duration {
	silent := p.alive
	if p.capped {
		silent = max(silent, time.Duration(p.probes)*(p.rtoMax+timers.Slack(p.rtoMax)))
	}
	return silent + p.period + p.rtoMax + timers.Slack(p.rtoMax)
}

func (c Config) guardParams() guardParams {
	return newGuardParams(kernelOptions{k: sockopt.Options{UserTimeout: c.UserTimeout, RTOMax: c.RTOMax}, stall: c.StallTimeout, config: c})
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
	return max(busy, c.guardParams().verdictBy())
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
	return c.StallTimeout + 2*p.period + p.rtoMax + timers.Slack(p.rtoMax)
}

// GuardHolds is what Read reports for a guarded connection at rest, with
// nothing queued for the guard's linger (see Guard): c, with RTOMax the
// cap the guard sets (UserTimeout/8, at least 1 s, in tenths of a second)
// unless c sets one. While data it wrote is queued, and for the linger
// after (within a user timeout and a half of the last write), the guard
// holds UserTimeout at 0.
func (c Config) GuardHolds() Config {
	c.RTOMax = c.guardParams().rtoMax
	return c
}

// guardState is what the guard remembers between ticks.
type guardState struct {
	heard    time.Time     // the peer's last ACK, or the arming if later
	progress time.Time     // the tick that saw bytesAcked move, or the arming
	acked    uint64        // bytesAcked as of progress
	ut       time.Duration // the user timeout the socket holds
	empty    time.Time     // since when the ticks have seen nothing queued; zero while data is
	lastIdle time.Time     // the last tick that saw nothing queued
	writes   uint64        // writes begun, as of the last tick
}

type guardAction struct {
	ut   time.Duration // the user timeout the socket should hold while armed
	idle bool          // nothing queued for linger: the guard may disarm
	stop bool          // the connection is over
	cut  guardCut      // why ut is the configured timeout again, if it is
}

// decide is one tick's decision, kept free of system calls so that its
// rules can be tested on their own.
func (p guardParams) decide(now time.Time, s sockopt.Info, st *guardState) guardAction {
	if s.Closed() {
		return guardAction{stop: true}
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
		return guardAction{idle: now.Sub(st.empty) >= p.linger}
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
	silent := now.Sub(st.heard) > p.alive && (!s.Shut() || s.Probes >= p.probes)
	stalled := p.stall > 0 && now.Sub(st.progress) >= p.stall
	switch {
	case silent:
		return guardAction{ut: p.base, cut: cutSilent}
	case stalled:
		return guardAction{ut: p.base, cut: cutStalled}
	}
	return guardAction{} // 0 while the peer answers: no clock can end it
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

type guard struct {
	state atomic.Uint64
	// conn is weak so that the guard's timer never keeps the socket
	// alive: a connection dropped without Close is collected, its
	// cleanup stops the guard, and the runtime closes the socket.
	conn weak.Pointer[net.TCPConn]
	p    guardParams

	// lingering: armed with nothing queued, the next tick only at the
	// linger's end; the next write wakes it (wake).
	lingering atomic.Bool

	mu     sync.Mutex // serialises ticks, arming, reconfiguration and Close
	timer  *time.Timer
	due    time.Time     // when the next tick is scheduled
	next   time.Duration // until the next tick: from guardSettle, doubling to p.period
	st     guardState
	closed bool
	err    error    // first failure, joined to write errors
	cut    guardCut // the last verdict that set the user timeout back
	ticks  int      // ticks run, for the tests
}

// begin marks a write to rc beginning, arming the guard first if it was
// not: the user timeout is off before the data reaches the kernel.
func (g *guard) begin(rc syscall.RawConn) {
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
func (g *guard) wake() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.next = g.p.period
	first := g.p.alive
	if g.p.stall > 0 {
		first = min(first, g.p.period)
	}
	if g.due.IsZero() || time.Until(g.due) > first {
		g.scheduleLocked(first)
	}
}

func (g *guard) end() { g.state.Add(guardWriteEnd) }

// calmAt tells an armed guard that a send hold's sample at t found nothing
// queued or in flight, just before a write that queues its data at once
// (holdWrites). Data queued since is younger than t, and was queued no
// later than the write after t, so no tick can judge it silent before
// t+alive: the next tick moves there if it was due sooner, a period apart
// after it, as after wake. A connection whose requests are answered as
// they come is then not ticked after its arming. Only where p.calm: the
// idle bound holds armed, so the later disarm changes no bound, and no
// StallTimeout, whose ticks date the progress.
func (g *guard) calmAt(t time.Time) {
	if g.state.Load()&guardArmed == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.p.calm || g.closed || g.st.ut != 0 || g.due.IsZero() {
		return // no tick to move, or a verdict in force that the next tick may lift
	}
	if t.After(g.st.lastIdle) {
		g.st.lastIdle = t
	}
	if due := t.Add(g.p.alive); g.due.Before(due) {
		g.next = g.p.period
		g.scheduleLocked(time.Until(due))
	}
}

// arm holds the user timeout at 0 and starts the ticks, unless a tick is
// already due. The first tick comes guardSettle after the arming, and the
// interval doubles up to a period while data stays queued, so that a
// connection whose data is acknowledged at once holds its user timeout
// again within a few milliseconds (and an audit reads it back), while a
// busy one costs one TCP_INFO read a period.
func (g *guard) arm(rc syscall.RawConn) {
	if g.state.Or(guardArmed)&guardArmed != 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.p.base == 0 {
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
	g.next = min(guardSettle, g.p.period)
	g.scheduleLocked(g.next)
}

// guardSettle is the first tick's delay after an arming: a few round trips
// on a LAN, and far below any period (a period is UserTimeout/8).
const guardSettle = 10 * time.Millisecond

func (g *guard) scheduleLocked(d time.Duration) {
	g.due = time.Now().Add(d)
	if g.timer == nil {
		g.timer = time.AfterFunc(d, g.tick)
		return
	}
	g.timer.Reset(d)
}

func (g *guard) disarm() { g.state.And(^uint64(guardArmed)) }

func (g *guard) tick() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.p.base == 0 {
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
		g.holdLocked(rc, g.p.base)
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
			g.scheduleLocked(max(guardSettle, g.st.empty.Add(g.p.linger).Sub(now)))
			return
		}
		g.lingering.Store(false)
	}
	g.next = min(2*g.next, g.p.period)
	g.scheduleLocked(g.next)
}

// lastCut is the verdict, if any, on which the guard last let the kernel's
// clocks run while data was queued.
func (g *guard) lastCut() guardCut {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cut
}

// holdLocked makes the socket hold user timeout d, with a system call only
// if it holds another, and reports whether the guard goes on.
func (g *guard) holdLocked(rc syscall.RawConn, d time.Duration) bool {
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
func (g *guard) failLocked(err error) {
	g.disarm()
	g.closed = true
	if g.err == nil && !errors.Is(err, net.ErrClosed) {
		g.err = fmt.Errorf("ghostsock: window guard stopped: %w", err)
	}
}

// annotate joins the guard's own failure, if any, to a write error; a nil
// guard has none.
func (g *guard) annotate(err error) error {
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

func (g *guard) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.timer != nil {
		g.timer.Stop()
	}
}

// guardedRawConn is the RawConn SyscallConn hands out on a guarded Conn or
// one with a send hold. It hides the poll descriptor of the net package's
// own RawConn on purpose: *os.File's WriteTo would otherwise sendfile
// straight to the socket, past the guard and the hold.
type guardedRawConn struct {
	rc syscall.RawConn
	s  *connState // its guard is looked up at each write: a layer may add one later
}

func (r guardedRawConn) Control(f func(fd uintptr)) error { return r.rc.Control(f) }

func (r guardedRawConn) Read(f func(fd uintptr) (done bool)) error { return r.rc.Read(f) }

func (r guardedRawConn) Write(f func(fd uintptr) (done bool)) error {
	r.s.holdWrites(false) // f may write nothing, or wait
	return r.s.write(func() error { return r.rc.Write(f) })
}

// newGuard makes the guard for tc, whose socket rc carries o's options:
// the probe backoff is capped (TCP_RTO_MAX_MS) unless o sets a cap, and
// the guard rests, holding o's user timeout.
func newGuard(tc *net.TCPConn, rc syscall.RawConn, o *kernelOptions) (*guard, error) {
	p := newGuardParams(*o)
	if o.k.RTOMax == 0 && p.base != 0 { // else set already, with the other options
		switch err := sockopt.SetRTOMax(rc, p.rtoMax); {
		case errors.Is(err, sockopt.ErrNoProtoOpt):
			p.uncapped()
		case err != nil:
			return nil, err
		}
	}
	g := &guard{conn: weak.Make(tc), p: p}
	g.st.ut = o.k.UserTimeout
	return g, nil
}

// reconfigure moves the guard, and the socket, to o: o's options are set,
// except that an armed guard still holds the user timeout at 0 until its
// next verdict, and the guard takes o's timings from its next tick on. A
// user timeout of 0 leaves the guard nothing to protect: it rests.
func (g *guard) reconfigure(rc syscall.RawConn, o *kernelOptions) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := newGuardParams(*o)
	if !g.p.capped {
		p.uncapped()
	}
	hold := p.base
	if g.state.Load()&guardArmed != 0 && g.st.ut == 0 {
		hold = 0
	}
	set := *o
	set.k.UserTimeout = hold
	if err := sockopt.Control(rc, set.k.Set); err != nil {
		return err
	}
	if o.k.RTOMax == 0 && p.capped && p.base != 0 {
		switch err := sockopt.SetRTOMax(rc, p.rtoMax); {
		case errors.Is(err, sockopt.ErrNoProtoOpt): // a kernel before 6.15, first seen now
			p.uncapped()
		case err != nil:
			return err
		}
	}
	g.p, g.st.ut = p, hold
	if hold == 0 && p.base != 0 && !g.closed {
		// Armed: tick on the new period (the old one may have been longer).
		g.next = min(guardSettle, p.period)
		g.scheduleLocked(g.next)
	}
	return nil
}

// heldTimeout is the user timeout the guard enforces: what Inspect reports
// for a guarded connection, whatever the socket holds while armed.
func (g *guard) heldTimeout() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.p.base
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
