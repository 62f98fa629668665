package tuning

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// FuzzConfig checks the pure logic on any input: Validate never panics,
// every rejection names a field, and a valid Config has sane bounds.
func FuzzConfig(f *testing.F) {
	f.Add(int64(4e9), true, int64(2e9), int64(1e9), 10, int64(0), int64(0))
	f.Add(int64(-1), false, int64(-1), int64(-1), -1, int64(-1), int64(-1))
	f.Add(int64(0), true, int64(0), int64(0), 0, int64(1e9), int64(0))
	f.Add(int64(1500e3), true, int64(1500e6), int64(32768e9), 128, int64(120001e6), int64(1e9))
	f.Add(int64(3e9), true, int64(1e9), int64(1e9), 2, int64(1e9), int64(60e9))
	f.Fuzz(func(t *testing.T, ut int64, enable bool, idle, intvl int64, count int, rtoMax, stall int64) {
		c := Config{UserTimeout: time.Duration(ut), KeepAlive: net.KeepAliveConfig{
			Enable: enable, Idle: time.Duration(idle), Interval: time.Duration(intvl), Count: count},
			RTOMax: time.Duration(rtoMax), StallTimeout: time.Duration(stall)}
		err := c.Validate()
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error does not wrap ErrInvalidConfig: %v", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Limit == "" {
				t.Fatalf("error names no field: %v", err)
			}
			return
		}
		idleB, busyB := c.Bounds()
		if idleB <= 0 || busyB <= 0 {
			t.Fatalf("non-positive bound %v %v for %+v", idleB, busyB, c)
		}
		earlyIdle, earlyBusy := c.Earliest()
		if earlyIdle > idleB || earlyBusy > busyB {
			t.Fatalf("earliest %v, %v past the worst case %v, %v", earlyIdle, earlyBusy, idleB, busyB)
		}
		if c.UserTimeout > 0 && earlyBusy != c.UserTimeout {
			t.Fatalf("earliest busy %v != user timeout %v", earlyBusy, c.UserTimeout)
		}
		if enable && c.UserTimeout > 0 && idleB < c.UserTimeout {
			t.Fatalf("idle bound %v below user timeout %v: the kernel waits for UT", idleB, c.UserTimeout)
		}
		if c.UserTimeout >= MinGuardTimeout {
			if g := c.GuardBound(); g < busyB {
				t.Fatalf("GuardBound %v below the busy bound %v", g, busyB)
			}
			if c.StallTimeout > 0 && c.StallBound() <= c.StallTimeout {
				t.Fatalf("StallBound %v not past StallTimeout %v", c.StallBound(), c.StallTimeout)
			}
			p := c.guardParams()
			if p.Alive <= p.RTOMax+timers.Slack(p.RTOMax) {
				t.Fatalf("guard would judge a live peer between capped probes silent: %+v", p)
			}
		}
		if o := c.OutageSurvived(); o < 0 || o >= c.UserTimeout+2*LANRTO && c.UserTimeout > 0 {
			t.Fatalf("outage survived %v for UT %v", o, c.UserTimeout)
		}
	})
}

// FuzzForBudget checks that every budget is met or refused with ErrBudget.
func FuzzForBudget(f *testing.F) {
	for _, d := range []int64{0, -1, 1e9, 2e9, 2_500_000_000, 3e9, 7e9, 8e9, 3600e9, int64(MaxBudget), int64(MaxBudget) + 1} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d int64) {
		c, err := ForBudget(time.Duration(d))
		if err != nil {
			if !errors.Is(err, ErrBudget) {
				t.Fatalf("ForBudget(%v): %v does not wrap ErrBudget", time.Duration(d), err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ForBudget(%v) = invalid %+v: %v", time.Duration(d), c, err)
		}
		idle, busy := c.Bounds()
		if idle > time.Duration(d) || busy > time.Duration(d) {
			t.Fatalf("ForBudget(%v): bounds %v, %v exceed budget", time.Duration(d), idle, busy)
		}
		if time.Duration(d)-max(idle, busy) >= time.Duration(d)/4+time.Second {
			t.Fatalf("ForBudget(%v): bounds %v, %v waste the budget", time.Duration(d), idle, busy)
		}
	})
}
