package tuning

import (
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"time"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/guard"
	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// Kernel limits that Validate enforces: the ranges Linux accepts (tcp(7)).
// The other systems accept at least as much where they have the option (see
// "Platforms" in the package doc).
const (
	// MaxUserTimeout is the largest UserTimeout: TCP_USER_TIMEOUT is an int
	// of milliseconds (about 24.8 days).
	MaxUserTimeout = time.Duration(math.MaxInt32) * time.Millisecond

	// MaxKeepAliveIdle and MaxKeepAliveInterval are the largest
	// KeepAlive.Idle and KeepAlive.Interval (MAX_TCP_KEEPIDLE,
	// MAX_TCP_KEEPINTVL).
	MaxKeepAliveIdle     = 32767 * time.Second
	MaxKeepAliveInterval = 32767 * time.Second

	// MaxKeepAliveCount is the largest KeepAlive.Count (MAX_TCP_KEEPCNT).
	MaxKeepAliveCount = 127

	// MinRTOMax and MaxRTOMax are the range of a non-zero RTOMax: what
	// TCP_RTO_MAX_MS accepts, 1 s to TCP_RTO_MAX (120 s).
	MinRTOMax = timers.MinRTOMax
	MaxRTOMax = timers.RTOMax

	// Unchanged, in KeepAlive.Idle, KeepAlive.Interval or KeepAlive.Count,
	// leaves that option as the operating system has it (net.KeepAliveConfig's
	// negative values). It is the only negative value Validate accepts.
	Unchanged = -1
)

// Never (the largest time.Duration) is what Bounds returns for a case the
// Config does not detect at all: an idle connection with keepalive off.
const Never = timers.Never

// Assumptions Bounds makes where a Config leaves the kernel in charge. They
// are Linux's defaults; a host whose sysctls differ gets other figures.
const (
	// KernelKeepAliveIdle, KernelKeepAliveInterval and KernelKeepAliveCount
	// are net.ipv4.tcp_keepalive_time, _intvl and _probes as Linux ships
	// them (7200 s, 75 s, 9), used for fields set to Unchanged.
	KernelKeepAliveIdle     = timers.KernelKeepAliveIdle
	KernelKeepAliveInterval = timers.KernelKeepAliveInterval
	KernelKeepAliveCount    = timers.KernelKeepAliveCount

	// KernelRetries2 is net.ipv4.tcp_retries2 as Linux ships it (15), used
	// when UserTimeout is zero.
	KernelRetries2 = timers.KernelRetries2
)

// LANRTO and LANRTOMax are the range of retransmission timeouts Bounds and
// OutageSurvived assume unless Config.PathRTO says otherwise: a path with a
// round-trip time under 10 ms, whose RTO is TCP_RTO_MIN (200 ms) plus the
// RTT and its variation, on a loaded host up to 300 ms (Rule 7 in the
// package doc).
const (
	LANRTO    = timers.LANRTO
	LANRTOMax = timers.LANRTOMax
)

// Go's own defaults for a zero net.KeepAliveConfig field (net/dial.go).
const (
	defaultKeepAliveIdle     = 15 * time.Second
	defaultKeepAliveInterval = 15 * time.Second
	defaultKeepAliveCount    = 9
)

// Config is how one TCP socket detects a peer that vanished without FIN or
// RST. Build one with ForBudget, or fill UserTimeout and KeepAlive; the zero
// Config, which would detect nothing, does not validate. A Config is a plain
// value: copy it and compare it freely. Every entry point validates it before
// it touches a socket.
type Config struct {
	// UserTimeout is TCP_USER_TIMEOUT (RFC 5482, tcp(7)): how long sent
	// data may stay unacknowledged before the kernel ends the connection
	// with ETIMEDOUT. With keepalive on it also ends an idle connection, and
	// the kernel then ignores KeepAlive.Count (Rule 2 in the package doc).
	// Zero clears the option: net.ipv4.tcp_retries2 alone bounds
	// retransmissions (about 15 minutes by default, RetriesTimeout).
	// Unit: whole milliseconds (whole seconds on darwin and windows).
	// Limits: 0 to MaxUserTimeout; a non-zero value under MinGuardTimeout
	// needs NoGuard.
	UserTimeout time.Duration

	// KeepAlive is SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and
	// TCP_KEEPCNT, as net.KeepAliveConfig means them: Enable false turns
	// keepalive off (the timings are then not set, and IdleUnwatched must
	// say so); a zero Idle or Interval is Go's default of 15 s, a zero Count
	// Go's default of 9; Unchanged (-1) leaves that option as the OS has it.
	// Units: Idle and Interval whole seconds, 1 s to 32767 s; Count 1 to
	// 127. Other negative values, fractions of a second and values past the
	// limits are an error, never rounded or clamped.
	KeepAlive net.KeepAliveConfig

	// RTOMax is TCP_RTO_MAX_MS (Linux 6.15 and later, tcp(7)): the longest
	// the kernel waits between two retransmissions, or two zero-window
	// probes, of one connection. A cap keeps retransmissions coming, so that
	// a busy connection survives longer outages (OutageSurvived; Rule 6 in
	// the package doc), at the price of more retransmissions into a long
	// one. Zero, the default, leaves the kernel's (120 s, or
	// net.ipv4.tcp_rto_max_ms). Unit: whole milliseconds. Limits: MinRTOMax
	// to MaxRTOMax. A non-zero RTOMax is an error wrapping
	// errors.ErrUnsupported: outside Linux when the Config is built, before
	// Linux 6.15 from the first socket it is set on.
	RTOMax time.Duration

	// StallTimeout bounds how long a live peer that keeps its receive window
	// shut, while it answers every probe, may keep a guarded writer from
	// progress: once no byte has been acknowledged for StallTimeout, the
	// guard lets the kernel end the connection with ETIMEDOUT, within
	// StallBound. Like nginx's send_timeout, and unlike http.Server's
	// WriteTimeout, it never cuts a response that is slow but moving.
	// Zero, the default, sets no limit: a paused reader keeps its connection
	// for as long as it answers. Limits: 0, or at least UserTimeout.
	// Guarded connections only (see Guard).
	StallTimeout time.Duration

	// NoGuard turns the window guard off on the entry points that guard by
	// default (Listen, WrapListener, DialFunc, package httptransport): they
	// then hand out unguarded *Conn, and the kernel cuts a live peer that
	// keeps its window shut for UserTimeout (Rule 5 in the package doc). Set
	// it where connections carry only HTTP/2 or gRPC, which never shut the
	// window, or for a UserTimeout under MinGuardTimeout. False, the
	// default, guards. Guard ignores it.
	NoGuard bool

	// Observer, if set, is told once of every connection that Listen,
	// WrapListener and DialFunc open, however many of them it went through,
	// and once of how it ends (see Observer; package tuning/ghostmetrics
	// makes OpenTelemetry metrics of it). Nil, the default, observes
	// nothing. Dialer, Control, Apply and Guard never observe.
	Observer Observer

	// PathRTO is the longest retransmission timeout (tcpi_rto) of the
	// paths the Config's bounds allow for: Bounds, GuardBound and
	// OutageSurvived count the tail-loss probe and the first RTO as up to
	// PathRTO each (Rule 7 in the package doc). It sets no socket option.
	// Zero, the default, means a LAN: LANRTOMax. ForBudgetOnPath sets it. A
	// connection whose RTO grows past it is reported (EventSlowPath,
	// Snapshot.SlowPath). Limits: 0, or LANRTOMax to MaxRTOMax.
	PathRTO time.Duration

	// OutageGrace is how long a Conn keeps writing into a silence, beyond
	// the path's RTO, before the send hold stops its writes (see "Writers
	// that stream" in the package doc): an outage shorter than that is
	// recovered by fast retransmission, and the busy bound grows by it.
	// WithOutageGrace sets it. Zero, the default, holds writes after one RTO
	// of silence. Limits: 0 to UserTimeout.
	OutageGrace time.Duration

	// IdleUnwatched says that keepalive is off on purpose: a peer that
	// vanishes while the connection is idle is found only when this end
	// next sends (Bounds' idle case is Never). Without it Validate refuses
	// KeepAlive.Enable false, so that a hand-filled Config cannot leave idle
	// peers unwatched by omission. False by default; Lean sets it.
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
// would round, as *FieldError values joined with errors.Join, or nil. It
// checks the ranges Linux accepts on every GOOS; what a platform lacks
// (TCP_USER_TIMEOUT on FreeBSD, say) is an error wrapping
// errors.ErrUnsupported when c is applied.
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
	armed    bool            // idleHoldsArmed, computed once, for the guard (guardSettings)
	observer Observer        // Observer; nil observes nothing
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
	if guardSupported && c.UserTimeout != 0 { // else no guard can take it
		o.armed = idleHoldsArmed(c, c.UserTimeout)
	}
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
// while idle (a phone): keepalive off and IdleUnwatched set, the user
// timeout and the keepalive schedule kept; the other end keeps c and probes
// for both (Rule 8 in the package doc). The lean end learns that its peer
// vanished when it next sends, within the busy bound, or while a wait is
// marked (Conn.Awaiting, which package grpcdial does for every RPC), within
// AwaitBound. Use grpcdial.Options(c.Lean()) on the client and
// grpcserver.Options(c) on the server.
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

// AwaitBound is the worst case from a peer vanishing to the error for a
// Lean connection that awaits it (Conn.Awaiting) from before the vanishing:
// c's idle bound with its kept keepalive schedule on; Never with keepalive
// off and no schedule kept (LeanAwaits false). A wait that starts after the
// vanishing sends first, and the busy bound applies.
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

// MinGuardTimeout is the smallest non-zero UserTimeout that Validate
// accepts without NoGuard. The kernel cannot be made to probe more often
// than once a second (MinRTOMax), so within a shorter user timeout the guard
// cannot tell a live peer's answers from silence. With NoGuard set a
// Config may go below it; Guard still guards it then, and detection takes
// up to GuardBound.
const MinGuardTimeout = time.Second

// guardSupported: the guard needs TCP_INFO and Linux's zero-window rules.
const guardSupported = sockopt.TCPInfo

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

// pathRTO is the largest RTO c's bounds allow for.
func (c Config) pathRTO() time.Duration { return c.timings().PathRTOMax() }

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

// guardSettings is what a guard of o's connection takes: o keeps only
// what is costly to derive, so that each connection's copy stays small.
func (o *kernelOptions) guardSettings() guard.Settings {
	return guard.Settings{
		Options:  o.k,
		Stall:    o.stall,
		Armed:    o.armed,
		KeepIdle: o.config.keptSchedule().keepAliveIdle(),
	}
}

// checkPlatform reports what k asks for that this platform cannot apply.
func checkPlatform(k sockopt.Options) error {
	var unitErr error
	if unit, name := sockopt.UserTimeoutUnit(); name != "" && k.UserTimeout%unit != 0 {
		unitErr = &FieldError{Field: "UserTimeout", Value: k.UserTimeout.String(),
			Limit: fmt.Sprintf("must be a whole number of %v on %s (%s)", unit, runtime.GOOS, name)}
	}
	return errors.Join(unitErr, sockopt.Check(k))
}
