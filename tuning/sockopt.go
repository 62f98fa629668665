package tuning

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// sockopt names one socket option in a platform's table.
type sockopt struct {
	name       string
	level, opt int
}

// platformOptions is what one GOOS can set, filled in by sockopt_GOOS.go.
// A nil option is one the platform lacks.
type platformOptions struct {
	userTimeout     *sockopt      // TCP_USER_TIMEOUT or its equivalent
	userTimeoutUnit time.Duration // the unit that option counts in
	keepAlive       *sockopt      // SO_KEEPALIVE
	keepIdle        *sockopt      // seconds
	keepIntvl       *sockopt      // seconds
	keepCount       *sockopt
	rtoMax          *sockopt // TCP_RTO_MAX_MS, milliseconds (Linux 6.15+)
	// listenerInherits: accepted sockets inherit the listening socket's
	// options, so Listen sets them once instead of on every accept.
	listenerInherits bool
}

var listenerOptionsInherited = platform.listenerInherits

// errNoProtoOpt is what a kernel answers for a socket option it does not
// know.
var errNoProtoOpt error = syscall.ENOPROTOOPT

// checkPlatform reports what o asks for that this platform cannot apply.
func checkPlatform(o kernelOptions) error {
	p := platform
	var errs []error
	if o.userTimeout != 0 {
		switch {
		case p.userTimeout == nil:
			errs = append(errs, unsupported("UserTimeout (TCP_USER_TIMEOUT)"))
		case o.userTimeout%p.userTimeoutUnit != 0:
			errs = append(errs, &FieldError{Field: "UserTimeout", Value: o.userTimeout.String(),
				Limit: fmt.Sprintf("must be a whole number of %v on %s (%s)", p.userTimeoutUnit, runtime.GOOS, p.userTimeout.name)})
		}
	}
	if o.rtoMax != 0 && p.rtoMax == nil {
		errs = append(errs, unsupported("RTOMax (TCP_RTO_MAX_MS)"))
	}
	if p.keepAlive == nil {
		// Turning keepalive off is as much a setting as turning it on.
		errs = append(errs, unsupported("KeepAlive (SO_KEEPALIVE)"))
	} else if o.keepAlive {
		for _, f := range [...]struct {
			field string
			opt   *sockopt
			val   int
		}{
			{"KeepAlive.Idle", p.keepIdle, o.idleSeconds},
			{"KeepAlive.Interval", p.keepIntvl, o.intvlSeconds},
			{"KeepAlive.Count", p.keepCount, o.count},
		} {
			if f.opt == nil && f.val != Unchanged {
				errs = append(errs, unsupported(f.field))
			}
		}
	}
	return errors.Join(errs...)
}

func unsupported(what string) error {
	return fmt.Errorf("ghostsock: %s on %s/%s: %w", what, runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// set applies o to fd: timing options first and SO_KEEPALIVE last, so the
// keepalive timer is armed once, with the final idle time. compile has
// already checked that the platform has every option set needs.
func (o kernelOptions) set(fd uintptr) error {
	p := platform
	if p.userTimeout != nil {
		if err := setInt(fd, p.userTimeout, int(o.userTimeout/p.userTimeoutUnit)); err != nil {
			return err
		}
	}
	if o.rtoMax != 0 {
		if err := setInt(fd, p.rtoMax, int(o.rtoMax/time.Millisecond)); err != nil {
			return kernelLacks(err, "RTOMax (TCP_RTO_MAX_MS needs Linux 6.15 or later)")
		}
	}
	if o.keepAlive {
		if err := o.setKeepAliveTimings(fd); err != nil {
			return err
		}
	}
	return setKeepAlive(fd, o.keepAlive)
}

// setKeepAliveTimings sets o's keepalive schedule on fd without turning
// keepalive on, for a Lean connection's Awaiting.
func (o kernelOptions) setKeepAliveTimings(fd uintptr) error {
	p := platform
	if p.keepIdle == nil || p.keepIntvl == nil || p.keepCount == nil {
		return unsupported("keepalive timings (Awaiting)")
	}
	for _, f := range [...]struct {
		opt *sockopt
		val int
	}{{p.keepIdle, o.idleSeconds}, {p.keepIntvl, o.intvlSeconds}, {p.keepCount, o.count}} {
		if f.val == Unchanged {
			continue
		}
		if err := setInt(fd, f.opt, f.val); err != nil {
			return err
		}
	}
	return nil
}

// setKeepAlive is SO_KEEPALIVE alone.
func setKeepAlive(fd uintptr, on bool) error { return setInt(fd, platform.keepAlive, boolInt(on)) }

// kernelLacks wraps errors.ErrUnsupported around a setsockopt error that
// says the running kernel does not know the option (ENOPROTOOPT), keeping
// the *os.SyscallError; other errors come back as they are.
func kernelLacks(err error, what string) error {
	if errors.Is(err, errNoProtoOpt) {
		return fmt.Errorf("ghostsock: %s on this kernel: %w: %w", what, errors.ErrUnsupported, err)
	}
	return err
}

// get reads back what set sets; options the platform lacks read as zero.
func get(fd uintptr) (Config, error) {
	p := platform
	read := func(opt *sockopt) (int, error) {
		if opt == nil {
			return 0, nil
		}
		return getInt(fd, opt)
	}
	var c Config
	var v [5]int
	for i, opt := range [...]*sockopt{p.userTimeout, p.keepAlive, p.keepIdle, p.keepIntvl, p.keepCount} {
		n, err := read(opt)
		if err != nil {
			return Config{}, err
		}
		v[i] = n
	}
	c.UserTimeout = time.Duration(v[0]) * p.userTimeoutUnit
	c.KeepAlive.Enable = v[1] != 0
	c.KeepAlive.Idle = time.Duration(v[2]) * time.Second
	c.KeepAlive.Interval = time.Duration(v[3]) * time.Second
	c.KeepAlive.Count = v[4]
	if p.rtoMax != nil {
		// A kernel before 6.15 does not know the option: it holds none.
		ms, err := getInt(fd, p.rtoMax)
		if err != nil && !errors.Is(err, errNoProtoOpt) {
			return Config{}, err
		}
		if d := time.Duration(ms) * time.Millisecond; d != MaxRTOMax {
			c.RTOMax = d
		}
	}
	return c, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
