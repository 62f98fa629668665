package tuning

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

func TestRTOForRTT(t *testing.T) {
	assert.Equal(t, 201*time.Millisecond, RTOForRTT(time.Millisecond), "a LAN: the floor")
	assert.Equal(t, 300*time.Millisecond, RTOForRTT(100*time.Millisecond), "where 2 RTT reaches the floor")
	assert.Equal(t, 1800*time.Millisecond, RTOForRTT(600*time.Millisecond), "3 RTT past it")
}

func TestForBudgetOnPath(t *testing.T) {
	for _, d := range []time.Duration{3 * time.Second, 10 * time.Second, 30 * time.Second, 5 * time.Minute} {
		lan, err := ForBudget(d)
		require.NoError(t, err)
		for _, rtt := range []time.Duration{time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond, 600 * time.Millisecond, time.Second, 3 * time.Second} {
			c, err := ForBudgetOnPath(d, rtt)
			if err != nil {
				assert.ErrorIs(t, err, ErrBudget, "budget %v, RTT %v", d, rtt)
				assert.Contains(t, err.Error(), "the smallest budget for this path is", "budget %v, RTT %v: the error names the fix", d, rtt)
				continue
			}
			require.NoError(t, c.Validate())
			if rtt <= timers.LANRTT {
				assert.Equal(t, lan, c, "budget %v, RTT %v: a LAN path is ForBudget's", d, rtt)
				continue
			}
			assert.Equal(t, max(RTOForRTT(rtt), LANRTOMax), c.PathRTO, "budget %v, RTT %v", d, rtt)
			idle, busy := c.Bounds()
			assert.LessOrEqual(t, idle, d, "budget %v, RTT %v: idle", d, rtt)
			assert.LessOrEqual(t, busy, d, "budget %v, RTT %v: busy", d, rtt)
			if d >= 10*time.Second { // below, four capped probes take longer than the budget (GuardBound)
				assert.LessOrEqual(t, c.GuardBound(), d, "budget %v, RTT %v: busy, guarded", d, rtt)
			}
			assert.GreaterOrEqual(t, c.UserTimeout, 3*c.PathRTO, "budget %v, RTT %v: room for a lost retransmission", d, rtt)
			assert.LessOrEqual(t, c.UserTimeout, lan.UserTimeout, "budget %v, RTT %v: never longer than the LAN's", d, rtt)
			assert.Equal(t, [2]time.Duration{lan.KeepAlive.Idle, lan.KeepAlive.Interval}, [2]time.Duration{c.KeepAlive.Idle, c.KeepAlive.Interval},
				"budget %v, RTT %v: the same idle schedule", d, rtt)
			assert.LessOrEqual(t, c.KeepAlive.Count, lan.KeepAlive.Count, "budget %v, RTT %v: probes", d, rtt)
			assertLingers(t, c)
		}
	}
	// The smallest budget an error names is met.
	_, err := ForBudgetOnPath(10*time.Second, time.Second)
	require.ErrorIs(t, err, ErrBudget)
	msg := err.Error()
	least, perr := time.ParseDuration(msg[strings.LastIndex(msg, " ")+1:])
	require.NoError(t, perr, "the error ends with the budget: %v", err)
	_, err = ForBudgetOnPath(least, time.Second)
	assert.NoError(t, err, "the budget the error names fits")
	_, err = ForBudgetOnPath(least-time.Second, time.Second)
	assert.ErrorIs(t, err, ErrBudget, "and is the smallest")
	_, err = ForBudgetOnPath(10*time.Second, 0)
	assert.ErrorIs(t, err, ErrBudget, "a round trip must be positive")
}

func TestPathRTOValidate(t *testing.T) {
	c, err := ForBudget(10 * time.Second)
	require.NoError(t, err)
	for _, bad := range []time.Duration{time.Millisecond, LANRTOMax - time.Millisecond, MaxRTOMax + time.Second, -time.Second} {
		c.PathRTO = bad
		assert.ErrorContains(t, c.Validate(), "PathRTO", "%v", bad)
	}
	for _, good := range []time.Duration{0, LANRTOMax, 2 * time.Second, MaxRTOMax} {
		c.PathRTO = good
		assert.NoError(t, c.Validate(), "%v", good)
	}
	// The busy bound grows with the path's RTO: a probe and an RTO, and the
	// send hold's start with the probe's wait of 2 SRTT (up to 2/3 of
	// PathRTO); the idle bound does not move.
	c.PathRTO = 0
	idle, lan := c.Bounds()
	c.PathRTO = 2 * time.Second
	idle2, slow := c.Bounds()
	assert.Equal(t, idle, idle2)
	least := lan + 2*(c.PathRTO-LANRTOMax)
	most := least + c.PathRTO + 2*c.PathRTO/3 + timers.Slack(c.PathRTO)*3
	assert.GreaterOrEqual(t, slow, least, "busy: %v on a LAN, %v at RTO 2 s", lan, slow)
	assert.LessOrEqual(t, slow, most, "busy: %v on a LAN, %v at RTO 2 s", lan, slow)
}

func TestSnapshotSlowPath(t *testing.T) {
	c, err := ForBudget(10 * time.Second)
	require.NoError(t, err)
	s := Snapshot{State: TCPEstablished, RTT: 100 * time.Millisecond, RTTVar: 20 * time.Millisecond, RTO: 1200 * time.Millisecond, Backoff: 2, UnackedSegments: 1, Options: c, OptionsKnown: true}
	assert.Equal(t, 300*time.Millisecond, s.BaseRTO(), "backed off: the kernel's RTO from RTT and RTTVar")
	assert.False(t, s.SlowPath(), "a backed-off LAN RTO is no slow path")
	s.Backoff = 0
	assert.True(t, s.SlowPath(), "an RTO of 1.2 s is past a LAN's")
	onPath := s
	onPath.Options.PathRTO = 1200 * time.Millisecond
	assert.False(t, onPath.SlowPath(), "within the Config's PathRTO")
	assert.Equal(t, onPath.EndsIn(), s.EndsIn(), "EndsIn counts with the connection's own RTO either way")
	_, lanBusy := c.Bounds()
	assert.Greater(t, s.EndsIn(), lanBusy, "and so past the LAN's bound")
}

// The user timeout a budget leaves on a phone's path, the paths too slow
// for it, and what ForBudget's own Config promises on the slowest (the
// figures the README and the package doc quote).
func ExampleForBudgetOnPath() {
	for _, rtt := range []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, 600 * time.Millisecond, time.Second} {
		c, err := ForBudgetOnPath(10*time.Second, rtt)
		if err != nil {
			fmt.Println(err)
			continue
		}
		_, busy := c.Bounds()
		fmt.Printf("RTT %v: PathRTO %v, user timeout %v, busy bound %v\n", rtt, c.PathRTO, c.UserTimeout, busy.Round(time.Millisecond))
	}
	lan, _ := ForBudget(10 * time.Second)
	lan.PathRTO = RTOForRTT(600 * time.Millisecond)
	_, busy := lan.Bounds()
	fmt.Printf("ForBudget(10s) at RTT 600ms: user timeout %v, busy bound %v\n", lan.UserTimeout, busy.Round(time.Second))
	// Output:
	// RTT 50ms: PathRTO 300ms, user timeout 8s, busy bound 9.419s
	// RTT 200ms: PathRTO 600ms, user timeout 7.65s, busy bound 10s
	// ghostsock: budget cannot be met: budget 10s on a 600ms round trip (RTO up to 1.8s) leaves a user timeout under three RTOs, so that one lost retransmission would end a live connection; the smallest budget for this path is 12s
	// ghostsock: budget cannot be met: budget 10s on a 1s round trip (RTO up to 3s) leaves a user timeout under three RTOs, so that one lost retransmission would end a live connection; the smallest budget for this path is 19s
	// ForBudget(10s) at RTT 600ms: user timeout 8s, busy bound 14s
}

// assertLingers checks that keepalive alone ends an idle connection of c no
// later than c's user timeout does, so that the guard may hold the user
// timeout at 0 for half of it after a write (the guard's linger) and a request
// now and then arms nothing.
func assertLingers(t *testing.T, c Config) {
	t.Helper()
	c = c.keptSchedule() // as the guard counts
	with, _, _ := timers.KeepAliveFirings(c.timings())
	c0 := c
	c0.UserTimeout = 0
	without, _, _ := timers.KeepAliveFirings(c0.timings())
	assert.LessOrEqual(t, without, with, "%+v: keepalive alone ends an idle connection as soon", c)
	assert.Equal(t, c.UserTimeout/2, c.guardParams().Linger, "%+v: the guard lingers", c)
}
