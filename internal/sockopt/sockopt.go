package sockopt

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// Unchanged in a keepalive timing leaves the kernel's value in place.
const Unchanged = -1

// Options are socket options in kernel units.
type Options struct {
	UserTimeout time.Duration // a whole number of UserTimeoutUnit; 0 clears it
	KeepAlive   bool          // SO_KEEPALIVE
	Idle        int           // TCP_KEEPIDLE, seconds; Unchanged leaves it
	Interval    int           // TCP_KEEPINTVL, seconds; Unchanged leaves it
	Count       int           // TCP_KEEPCNT; Unchanged leaves it
	RTOMax      time.Duration // TCP_RTO_MAX_MS, whole milliseconds; 0 leaves it
}

// Held is what a socket holds, as Get reads it back.
type Held struct {
	UserTimeout    time.Duration
	KeepAlive      bool
	Idle, Interval time.Duration
	Count          int
	RTOMax         time.Duration // as the kernel holds it (120 s by default); 0 where the kernel or platform lacks it
}

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
}

// ListenerInherits reports that accepted sockets inherit the listening
// socket's options on this platform (Linux).
const ListenerInherits = platformInherits

// ErrNoProtoOpt is what a kernel answers for a socket option it does not
// know (ENOPROTOOPT).
var ErrNoProtoOpt error = syscall.ENOPROTOOPT

// UserTimeoutUnit is the unit this platform's user timeout counts in, and
// the option's name; the name is "" where the platform has none.
func UserTimeoutUnit() (time.Duration, string) {
	if platform.userTimeout == nil {
		return platform.userTimeoutUnit, ""
	}
	return platform.userTimeoutUnit, platform.userTimeout.name
}

// Check reports what o asks for that this platform cannot set, each an
// error wrapping errors.ErrUnsupported.
func Check(o Options) error {
	p := platform
	var errs []error
	if o.UserTimeout != 0 && p.userTimeout == nil {
		errs = append(errs, Unsupported("UserTimeout (TCP_USER_TIMEOUT)"))
	}
	if o.RTOMax != 0 && p.rtoMax == nil {
		errs = append(errs, Unsupported("RTOMax (TCP_RTO_MAX_MS)"))
	}
	if p.keepAlive == nil {
		// Turning keepalive off is as much a setting as turning it on.
		errs = append(errs, Unsupported("KeepAlive (SO_KEEPALIVE)"))
	} else if o.KeepAlive {
		for _, f := range [...]struct {
			field string
			opt   *sockopt
			val   int
		}{
			{"KeepAlive.Idle", p.keepIdle, o.Idle},
			{"KeepAlive.Interval", p.keepIntvl, o.Interval},
			{"KeepAlive.Count", p.keepCount, o.Count},
		} {
			if f.opt == nil && f.val != Unchanged {
				errs = append(errs, Unsupported(f.field))
			}
		}
	}
	return errors.Join(errs...)
}

// Unsupported is the error for what this platform cannot do.
func Unsupported(what string) error {
	return fmt.Errorf("ghostsock: %s on %s/%s: %w", what, runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// Set applies o to fd: timing options first and SO_KEEPALIVE last, so the
// keepalive timer is armed once, with the final idle time. Check has
// already said that the platform has every option Set needs.
func (o Options) Set(fd uintptr) error {
	p := platform
	if p.userTimeout != nil {
		if err := setInt(fd, p.userTimeout, int(o.UserTimeout/p.userTimeoutUnit)); err != nil {
			return err
		}
	}
	if o.RTOMax != 0 {
		if err := setInt(fd, p.rtoMax, int(o.RTOMax/time.Millisecond)); err != nil {
			return kernelLacks(err, "RTOMax (TCP_RTO_MAX_MS needs Linux 6.15 or later)")
		}
	}
	if o.KeepAlive {
		if err := o.SetKeepAliveTimings(fd); err != nil {
			return err
		}
	}
	return SetKeepAlive(fd, o.KeepAlive)
}

// SetKeepAliveTimings sets o's keepalive schedule on fd without turning
// keepalive on.
func (o Options) SetKeepAliveTimings(fd uintptr) error {
	p := platform
	if p.keepIdle == nil || p.keepIntvl == nil || p.keepCount == nil {
		return Unsupported("keepalive timings")
	}
	for _, f := range [...]struct {
		opt *sockopt
		val int
	}{{p.keepIdle, o.Idle}, {p.keepIntvl, o.Interval}, {p.keepCount, o.Count}} {
		if f.val == Unchanged {
			continue
		}
		if err := setInt(fd, f.opt, f.val); err != nil {
			return err
		}
	}
	return nil
}

// SetKeepAlive is SO_KEEPALIVE alone.
func SetKeepAlive(fd uintptr, on bool) error {
	v := 0
	if on {
		v = 1
	}
	return setInt(fd, platform.keepAlive, v)
}

// kernelLacks wraps errors.ErrUnsupported around a setsockopt error that
// says the running kernel does not know the option (ENOPROTOOPT), keeping
// the *os.SyscallError; other errors come back as they are.
func kernelLacks(err error, what string) error {
	if errors.Is(err, ErrNoProtoOpt) {
		return fmt.Errorf("ghostsock: %s on this kernel: %w: %w", what, errors.ErrUnsupported, err)
	}
	return err
}

// Get reads back what Set sets; options the platform lacks read as zero.
func Get(fd uintptr) (Held, error) {
	p := platform
	var v [5]int
	for i, opt := range [...]*sockopt{p.userTimeout, p.keepAlive, p.keepIdle, p.keepIntvl, p.keepCount} {
		if opt == nil {
			continue
		}
		n, err := getInt(fd, opt)
		if err != nil {
			return Held{}, err
		}
		v[i] = n
	}
	h := Held{
		UserTimeout: time.Duration(v[0]) * p.userTimeoutUnit,
		KeepAlive:   v[1] != 0,
		Idle:        time.Duration(v[2]) * time.Second,
		Interval:    time.Duration(v[3]) * time.Second,
		Count:       v[4],
	}
	if p.rtoMax != nil {
		// A kernel before 6.15 does not know the option: it holds none.
		ms, err := getInt(fd, p.rtoMax)
		if err != nil && !errors.Is(err, ErrNoProtoOpt) {
			return Held{}, err
		}
		h.RTOMax = time.Duration(ms) * time.Millisecond
	}
	return h, nil
}

// SetUserTimeout sets TCP_USER_TIMEOUT alone on the socket behind rc.
func SetUserTimeout(rc syscall.RawConn, d time.Duration) error {
	if platform.userTimeout == nil {
		return Unsupported("UserTimeout (TCP_USER_TIMEOUT)")
	}
	return setUnits(rc, platform.userTimeout, int(d/platform.userTimeoutUnit))
}

// SetRTOMax sets TCP_RTO_MAX_MS alone on the socket behind rc; a kernel
// before 6.15 answers an error wrapping ErrNoProtoOpt.
func SetRTOMax(rc syscall.RawConn, d time.Duration) error {
	if platform.rtoMax == nil {
		return Unsupported("RTOMax (TCP_RTO_MAX_MS)")
	}
	return setUnits(rc, platform.rtoMax, int(d/time.Millisecond))
}

func setUnits(rc syscall.RawConn, opt *sockopt, v int) error {
	return Control(rc, func(fd uintptr) error { return setInt(fd, opt, v) })
}
