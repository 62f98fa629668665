package tuning

import (
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/guard"
	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// Kernel limits that Validate enforces. They are the ranges Linux accepts in
// tcp(7); the other supported systems accept at least as much, except where
// sockopt_GOOS.go says otherwise.
const (
	// MaxUserTimeout is the largest TCP_USER_TIMEOUT Linux accepts: the
	// option is an int of milliseconds (about 24.8 days).
	MaxUserTimeout = time.Duration(math.MaxInt32) * time.Millisecond

	// MaxKeepAliveIdle and MaxKeepAliveInterval are the largest
	// TCP_KEEPIDLE and TCP_KEEPINTVL Linux accepts (MAX_TCP_KEEPIDLE,
	// MAX_TCP_KEEPINTVL: 32767 seconds).
	MaxKeepAliveIdle     = 32767 * time.Second
	MaxKeepAliveInterval = 32767 * time.Second

	// MaxKeepAliveCount is the largest TCP_KEEPCNT Linux accepts
	// (MAX_TCP_KEEPCNT).
	MaxKeepAliveCount = 127

	// MinRTOMax and MaxRTOMax are the range TCP_RTO_MAX_MS accepts (Linux
	// 6.15 and later): one second to TCP_RTO_MAX, 120 s.
	MinRTOMax = timers.MinRTOMax
	MaxRTOMax = timers.RTOMax

	// Unchanged, in KeepAlive.Idle, KeepAlive.Interval or KeepAlive.Count,
	// leaves that socket option as the operating system has it, as
	// net.KeepAliveConfig documents for negative values. It is the only
	// negative value Validate accepts.
	Unchanged = -1
)

// Go's own defaults for a zero net.KeepAliveConfig field (net/dial.go).
const (
	defaultKeepAliveIdle     = 15 * time.Second
	defaultKeepAliveInterval = 15 * time.Second
	defaultKeepAliveCount    = 9
)

// Config is how one TCP socket detects a peer that vanished without FIN or
// RST. Build one with ForBudget, or fill UserTimeout and KeepAlive: the zero
// Config, which would detect nothing, does not validate.
//
// A Config is a plain value: copy it, compare it, keep it in your own
// configuration. Every entry point validates it before it touches a socket.
type Config struct {
	// UserTimeout is TCP_USER_TIMEOUT (RFC 5482, tcp(7)): how long sent
	// data may stay unacknowledged before the kernel aborts the connection
	// with ETIMEDOUT. With keepalive on, it also ends an idle connection
	// once it has been idle this long and one probe went unanswered (see
	// Bounds); KeepAlive.Count is then ignored by the kernel.
	//
	// Zero clears the option: retransmissions are then bounded only by
	// net.ipv4.tcp_retries2 (about 15 minutes by default).
	// Unit: whole milliseconds (whole seconds on darwin and windows).
	// Limits: 0 to MaxUserTimeout. Negative values are an error.
	UserTimeout time.Duration

	// KeepAlive is SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and
	// TCP_KEEPCNT, with net.KeepAliveConfig's own meaning: Enable false
	// turns keepalive off (the other fields are then not applied); a zero
	// Idle or Interval means Go's default of 15 s, a zero Count Go's
	// default of 9; Unchanged (-1) leaves that option as the OS has it.
	//
	// Units: Idle and Interval whole seconds, 1 s to 32767 s; Count 1 to
	// 127. Other negative values, fractions of a second and values past
	// the limits are an error, never rounded or clamped.
	KeepAlive net.KeepAliveConfig

	// RTOMax is TCP_RTO_MAX_MS (Linux 6.15 and later, tcp(7)): the longest
	// the kernel waits between two retransmissions, or two zero-window
	// probes, of one connection. Retransmissions back off from 200 ms and
	// double each time; a cap makes them keep coming, so a busy connection
	// survives any outage that ends at least RTOMax before UserTimeout runs
	// out (see Config.OutageSurvived), at the price of more retransmissions
	// into a long outage.
	//
	// Zero leaves the kernel's value (120 s, or net.ipv4.tcp_rto_max_ms).
	// Unit: whole milliseconds (the kernel rounds to its jiffy). Limits:
	// MinRTOMax (1 s) to MaxRTOMax (120 s). On kernels before 6.15 and on
	// other systems a non-zero RTOMax is an error wrapping
	// errors.ErrUnsupported, from the first socket it is set on.
	RTOMax time.Duration

	// StallTimeout bounds how long a live peer may keep a guarded writer
	// from making progress: no byte acknowledged while data waits to be
	// sent, because the peer keeps its receive window shut (it stopped
	// reading) although it answers every probe. Once a stall reaches
	// StallTimeout the guard lets the kernel end the connection with
	// ETIMEDOUT, within Config.StallBound. It is to a paused reader what
	// nginx's send_timeout is, and unlike http.Server's WriteTimeout it
	// never cuts a response that is slow but moving.
	//
	// Zero, the default, sets no limit: the guard keeps a paused reader's
	// connection for as long as the peer answers, as a stock server does.
	// Unit: any duration; limits: 0, or at least UserTimeout. It applies to
	// guarded connections only (see Guard).
	StallTimeout time.Duration

	// NoGuard turns the window guard off on the entry points that guard by
	// default (Listen, WrapListener, DialFunc, and httptransport's
	// client): they then hand out unguarded *Conn, and a live peer that
	// keeps its window shut for UserTimeout is cut by the kernel (see
	// Guard). Set it where connections carry only HTTP/2 or gRPC, which
	// never shut the window, or for a UserTimeout under MinGuardTimeout.
	// Guard guards whatever NoGuard says.
	NoGuard bool

	// Observer, if set, is told of every connection that Listen,
	// WrapListener and DialFunc open, and of how each ends: reaped idle or busy, a
	// live peer cut for a stalled window, reset, closed (see Observer;
	// package tuning/ghostmetrics makes OpenTelemetry metrics of it).
	// Each Observer of a connection is told once that it opened and once
	// that it ended, however many entry points it went through.
	//
	// Nil, the default, observes nothing: connections are handed out as
	// the same *Conn, with no Observer to tell. Dialer, Control, Apply and
	// Guard never observe: they do not hand the connection out.
	Observer Observer

	// PathRTO is the longest retransmission timeout (tcpi_rto) of the
	// paths the Config's bounds allow for: Bounds, GuardBound and
	// OutageSurvived count the tail-loss probe and the first RTO as up to
	// PathRTO each. Zero, the default, means a LAN: LANRTOMax (300 ms).
	// ForBudgetOnPath sets it from a round-trip time (RTOForRTT). A
	// connection whose RTO grows past it is outside the bounds: an
	// Observer is told once (EventSlowPath), and Inspect says so.
	// It sets no socket option. Limits: 0, or LANRTOMax to MaxRTOMax.
	PathRTO time.Duration

	// OutageGrace is how long a Conn keeps writing into a silence beyond
	// the path's RTO before the send hold stops its writes (see "Writers
	// that stream" in the package doc). A stream whose outage ends within
	// it recovers as a bare socket's does, by fast retransmission with its
	// window kept, instead of waiting for an RTO retransmission and
	// starting again from a window of one; the busy bound (Bounds) grows
	// by it. BENCHMARKS.md, part 10, has both sides of the trade.
	//
	// Zero, the default, holds writes after one RTO of silence, which
	// keeps the busy bound tightest. Limits: 0 to UserTimeout.
	OutageGrace time.Duration

	// IdleUnwatched says that keepalive is off on purpose: an idle
	// connection is then never probed, and a peer that vanishes while it
	// is idle is found only when this end next sends (Bounds reports the
	// idle case as Never; Inspect and ghostscan call it unwatched). Lean
	// sets it, for the end whose peer probes for both. Without it,
	// Validate refuses a Config whose KeepAlive is off, so that a
	// hand-filled Config cannot leave idle peers undetected by omission.
	IdleUnwatched bool
}

// ErrInvalidConfig is wrapped by every error that reports a Config field
// out of range, so callers can test errors.Is(err, ErrInvalidConfig).
var ErrInvalidConfig = errors.New("ghostsock: invalid config")

// FieldError says which Config field is out of range and what its limit is.
// It wraps ErrInvalidConfig.
type FieldError struct {
	Field string // Go path of the field, e.g. "KeepAlive.Count"
	Value string // the value given, formatted
	Limit string // what the field accepts
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("ghostsock: invalid config: %s = %s: %s", e.Field, e.Value, e.Limit)
}

func (e *FieldError) Unwrap() error { return ErrInvalidConfig }

// Validate reports every field of c that the kernel would refuse or that Go
// would round, as *FieldError values joined with errors.Join. It returns nil
// for a valid Config.
//
// Validate checks the ranges Linux accepts, on every GOOS, so that a Config
// can be checked where it is written. What a platform lacks (for example
// TCP_USER_TIMEOUT on FreeBSD) is reported when the Config is applied, by
// an error wrapping errors.ErrUnsupported.
func (c Config) Validate() error {
	_, err := c.kernelUnits()
	return err
}

// kernelOptions is a Config in the kernel's units, computed once (by
// compile) so that each dial and accept only makes system calls.
type kernelOptions struct {
	k        sockopt.Options // the socket options
	stall    time.Duration   // StallTimeout, for the guard; not a socket option
	pathRTO  time.Duration   // PathRTO, LANRTOMax for 0: the RTO past which a connection is reported slow
	grace    time.Duration   // OutageGrace, for the send hold; not a socket option
	noGuard  bool            // NoGuard
	learns   bool            // keepalive off with a schedule kept (Lean): Conn.Awaiting turns it on
	observer Observer        // Observer; nil observes nothing
	guard    guard.Settings  // what a guard takes, computed once
	config   Config          // what these were compiled from

	// setFD is k.Set, bound once by compile: a method value made at each
	// dial or accept would be an allocation each time.
	setFD func(fd uintptr) error
}

// compile validates c, checks that this platform can apply it and converts
// it to kernel units. Every entry point that touches a socket calls it once.
func (c Config) compile() (kernelOptions, error) {
	o, err := c.kernelUnits()
	if err != nil {
		return kernelOptions{}, err
	}
	if err := checkPlatform(o.k); err != nil {
		return kernelOptions{}, err
	}
	o.setFD = o.k.Set
	o.guard = c.guardSettings(o.k)
	return o, nil
}

// kernelUnits validates c and converts it to kernel units. It is the one
// place where the limits above are enforced.
func (c Config) kernelUnits() (kernelOptions, error) {
	var errs []error
	bad := func(field string, value any, limit string) {
		errs = append(errs, &FieldError{Field: field, Value: fmt.Sprint(value), Limit: limit})
	}

	ut := c.UserTimeout
	switch {
	case ut < 0:
		bad("UserTimeout", ut, "must not be negative (0 clears TCP_USER_TIMEOUT)")
	case ut%time.Millisecond != 0:
		bad("UserTimeout", ut, "must be a whole number of milliseconds (the kernel's unit)")
	case ut > MaxUserTimeout:
		bad("UserTimeout", ut, fmt.Sprintf("must be at most %v (TCP_USER_TIMEOUT is an int of milliseconds)", MaxUserTimeout))
	}
	utOK := len(errs) == 0

	ka := c.KeepAlive
	idle := seconds(ka.Idle, defaultKeepAliveIdle, MaxKeepAliveIdle, "KeepAlive.Idle", "TCP_KEEPIDLE", bad)
	intvl := seconds(ka.Interval, defaultKeepAliveInterval, MaxKeepAliveInterval, "KeepAlive.Interval", "TCP_KEEPINTVL", bad)
	count := ka.Count
	switch {
	case count == Unchanged:
	case count < 0:
		bad("KeepAlive.Count", count, "must be 1 to 127, 0 for Go's default of 9, or -1 (Unchanged) to keep the OS setting")
	case count > MaxKeepAliveCount:
		bad("KeepAlive.Count", count, fmt.Sprintf("must be at most %d (TCP_KEEPCNT)", MaxKeepAliveCount))
	default:
		count = c.keepAliveCount() // 0: the default
	}
	switch rm := c.RTOMax; {
	case rm == 0:
	case rm%time.Millisecond != 0:
		bad("RTOMax", rm, "must be a whole number of milliseconds (TCP_RTO_MAX_MS)")
	case rm < MinRTOMax || rm > MaxRTOMax:
		bad("RTOMax", rm, fmt.Sprintf("must be 0 (the kernel's) or %v to %v (TCP_RTO_MAX_MS)", MinRTOMax, MaxRTOMax))
	}
	if pr := c.PathRTO; pr != 0 && (pr < LANRTOMax || pr > MaxRTOMax) {
		bad("PathRTO", pr, fmt.Sprintf("must be 0 (a LAN, %v) or %v to %v", LANRTOMax, LANRTOMax, MaxRTOMax))
	}
	if g := c.OutageGrace; g < 0 || (utOK && g > ut) {
		bad("OutageGrace", g, fmt.Sprintf("must be 0 to UserTimeout (%v): the send hold it delays has a user timeout to keep", ut))
	}
	if !ka.Enable && !c.IdleUnwatched {
		bad("KeepAlive.Enable", false, "keepalive off finds no idle peer that vanished, ever: turn it on (ForBudget does), or set IdleUnwatched to choose that (Lean does)")
	}
	if ut > 0 && ut < MinGuardTimeout && !c.NoGuard && utOK {
		bad("UserTimeout", ut, fmt.Sprintf("must be at least %v for the window guard, on by default, to judge a silence within it; set NoGuard to go without the guard (Guard then still guards, within GuardBound)", MinGuardTimeout))
	}
	switch st := c.StallTimeout; {
	case st == 0:
	case st < 0:
		bad("StallTimeout", st, "must not be negative (0 sets no limit)")
	case st < ut:
		bad("StallTimeout", st, fmt.Sprintf("must be 0 or at least UserTimeout (%v): the kernel ends a shorter stall itself without the guard", ut))
	}
	if len(errs) > 0 {
		return kernelOptions{}, errors.Join(errs...)
	}
	return kernelOptions{
		k: sockopt.Options{
			UserTimeout: ut,
			KeepAlive:   ka.Enable,
			Idle:        idle,
			Interval:    intvl,
			Count:       count,
			RTOMax:      c.RTOMax,
		},
		stall:    c.StallTimeout,
		pathRTO:  c.pathRTO(),
		grace:    c.OutageGrace,
		noGuard:  c.NoGuard,
		learns:   c.LeanAwaits(),
		observer: c.Observer,
		config:   c,
	}, nil
}

// sameOptions reports whether o and p set the same socket options and
// guard timings (Observers apart).
func (o *kernelOptions) sameOptions(p *kernelOptions) bool {
	return o.k == p.k && o.stall == p.stall && o.learns == p.learns
}

// seconds converts a keepalive duration field to whole seconds, applying
// net.KeepAliveConfig's zero default and the Unchanged sentinel.
func seconds(d, def, limit time.Duration, field, opt string, bad func(string, any, string)) int {
	switch {
	case d == 0:
		d = def
	case d == Unchanged:
		return Unchanged
	case d < 0:
		bad(field, d, "must not be negative; use -1 (Unchanged) to keep the OS setting")
		return 0
	case d%time.Second != 0:
		bad(field, d, fmt.Sprintf("must be a whole number of seconds (%s's unit)", opt))
		return 0
	case d > limit:
		bad(field, d, fmt.Sprintf("must be at most %v (%s)", limit, opt))
		return 0
	}
	return int(d / time.Second)
}

// Lean returns c for the end of a connection that should send nothing
// while idle: keepalive off, the user timeout kept. The other end keeps c
// and probes for both, since one probe and its answer tell each end that
// the other is alive, and a peer's probe does not reset an end's own
// keepalive timer: with both ends probing, twice the packets go on the
// wire (the packet counts are in BENCHMARKS.md, part 1).
//
// The trade-off: the lean end does not notice, while idle, that its peer
// vanished. It learns when it next sends: the user timeout ends that
// send within the busy bound (Bounds reports the idle case as Never).
// While it waits on its peer (a response, a stream's next message) it can
// learn too: Lean keeps c's keepalive schedule, off, and Conn.Awaiting
// turns it on for the wait, so that a vanished peer is found within
// AwaitBound of the later of the vanishing and the wait's start; package
// grpcdial does that for every RPC in flight. An idle channel, with
// nothing awaited, still sends nothing.
// That suits a phone talking to a server: the server, which must reap
// ghosts, probes; the phone wakes its radio only to answer, and a request
// it makes after the server vanished fails within the budget instead of
// hanging. Use it with grpcdial.Options(c.Lean()) on the client and
// grpcserver.Options(c) on the server. The demo and ghostbench show it as
// the "lean" setting.
func (c Config) Lean() Config {
	c.KeepAlive.Enable = false
	c.IdleUnwatched = true
	return c
}

// LeanAwaits reports whether c is Lean with a keepalive schedule kept
// (keepalive off, IdleUnwatched, KeepAlive.Idle set), so that
// Conn.Awaiting makes its connections probe while they wait.
func (c Config) LeanAwaits() bool {
	return !c.KeepAlive.Enable && c.IdleUnwatched && c.KeepAlive.Idle > 0
}

// AwaitBound is the worst case from a peer vanishing to the error, for a
// Lean connection that awaits it (Conn.Awaiting) from before the
// vanishing: the idle bound of c with its kept keepalive schedule on.
// Never if c keeps no schedule (keepalive off without Lean, or Lean of a
// Config with no KeepAlive.Idle). A wait that starts after the vanishing
// sends first, and the busy bound applies.
func (c Config) AwaitBound() time.Duration {
	idle, _ := c.keptSchedule().Bounds()
	return idle
}

// keptSchedule is c with a Lean Config's kept keepalive schedule on, as
// Awaiting turns it on; any other Config as it is.
func (c Config) keptSchedule() Config {
	if c.LeanAwaits() {
		c.KeepAlive.Enable = true
	}
	return c
}
