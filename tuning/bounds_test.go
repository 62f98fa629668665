package tuning

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

func ka(idle, intvl time.Duration, count int) net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: true, Idle: idle, Interval: intvl, Count: count}
}

func TestBounds(t *testing.T) {
	s, ms := time.Second, time.Millisecond
	late := timers.Slack // how late a timer armed that far ahead may fire
	for _, tc := range []struct {
		name                       string
		c                          Config
		earliestIdle, earliestBusy time.Duration
		idle                       time.Duration // worst case
	}{
		// The three cases measured on a 6.x kernel (DEVELOPERS.md): 4.05 s, 4.2 s, 5.1 s.
		{"UT 4s idle 2s intvl 1s count 10: count ignored", Config{UserTimeout: 4 * s, KeepAlive: ka(2*s, s, 10)}, 4 * s, 4 * s, 2*s + late(2*s) + 2*(s+late(s))},
		{"UT 1s below idle 3s: one probe must go unanswered", Config{UserTimeout: s, KeepAlive: ka(3*s, s, 9)}, 4 * s, s, 3*s + late(3*s) + s + late(s)},
		{"no UT: idle + count*interval", Config{UserTimeout: 0, KeepAlive: ka(2*s, s, 3)}, 5 * s, RetriesTimeout(15), 2*s + late(2*s) + 3*(s+late(s))},
		{"UT between probes rounds up to the next probe", Config{UserTimeout: 4500 * ms, KeepAlive: ka(2*s, s, 1)}, 5 * s, 4500 * ms, 2*s + late(2*s) + 3*(s+late(s))},
		{"UT equal to idle", Config{UserTimeout: 2 * s, KeepAlive: ka(2*s, 3*s, 1)}, 5 * s, 2 * s, 2*s + late(2*s) + 3*s + late(3*s)},
		{"Go defaults", Config{UserTimeout: 0, KeepAlive: ka(0, 0, 0)}, 15*s + 9*15*s, RetriesTimeout(15), 15*s + late(15*s) + 9*(15*s+late(15*s))},
		{"unchanged fields take Linux sysctl defaults", Config{UserTimeout: 0, KeepAlive: ka(Unchanged, Unchanged, Unchanged)}, 7200*s + 9*75*s, RetriesTimeout(15), 7200*s + late(7200*s) + 9*(75*s+late(75*s))},
		{"keepalive off never detects idle", Config{UserTimeout: 3 * s}, Never, 3 * s, Never},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ei, eb := tc.c.Earliest()
			assert.Equal(t, tc.earliestIdle, ei, "earliest idle")
			assert.Equal(t, tc.earliestBusy, eb, "earliest busy")
			idle, busy := tc.c.Bounds()
			assert.Equal(t, tc.idle, idle, "worst idle")
			if tc.c.UserTimeout == 0 {
				// Past tcp_model_timeout's threshold, at the next RTO expiry.
				assert.Equal(t, RetriesTimeout(15)+120*s, busy, "worst busy")
				return
			}
			// A probe and an RTO of LANRTOMax before the clock starts, each
			// late, and the clamped last timer late by at most its slack.
			lo := tc.c.UserTimeout + 2*LANRTOMax + 2*late(LANRTOMax)
			assert.GreaterOrEqual(t, busy, lo, "worst busy")
			assert.LessOrEqual(t, busy, lo+late(tc.c.UserTimeout), "worst busy")
		})
	}
	// Worked by hand: UT 3 s, RTO 300 ms, probe after 300 ms: sends at
	// 0.3, 0.6, 1.2, 2.4 s, abort at 3.6 s armed 1.2 s ahead.
	_, busy := Config{UserTimeout: 3 * s}.Bounds()
	assert.Equal(t, 3600*ms+2*late(300*ms)+late(1200*ms), busy)
}

func TestRetriesTimeout(t *testing.T) {
	assert.Equal(t, 924600*time.Millisecond, RetriesTimeout(15))
	assert.Equal(t, 600*time.Millisecond, RetriesTimeout(1))
	assert.Equal(t, time.Duration(0), RetriesTimeout(0))
	assert.Equal(t, 1023*200*time.Millisecond, RetriesTimeout(9))
	assert.Equal(t, 1023*200*time.Millisecond+120*time.Second, RetriesTimeout(10))
}

func TestForBudget(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		d    time.Duration
		want Config // zero: only the properties below
	}{
		{MinBudget, Config{UserTimeout: 2 * s, KeepAlive: ka(s, s, 1)}},
		{4 * s, Config{}},
		{5 * s, Config{UserTimeout: 4 * s, KeepAlive: ka(s, s, 3)}},
		{10 * s, Config{}},
		{15 * s, Config{UserTimeout: 13 * s, KeepAlive: ka(7*s, 2*s, 3)}},
		{20 * s, Config{UserTimeout: 17 * s, KeepAlive: ka(8*s, 3*s, 3)}},
		{61 * s, Config{}}, {time.Hour, Config{}}, {MaxBudget, Config{}},
	} {
		t.Run(tc.d.String(), func(t *testing.T) {
			c, err := ForBudget(tc.d)
			require.NoError(t, err)
			require.NoError(t, c.Validate())
			if tc.want != (Config{}) {
				assert.Equal(t, tc.want, c)
			}
			idle, busy := c.Bounds()
			assert.LessOrEqual(t, idle, tc.d, "worst idle")
			assert.LessOrEqual(t, busy, tc.d, "worst busy")
			ei, eb := c.Earliest()
			assert.Less(t, ei, idle)
			assert.Less(t, eb, busy)
			// Without the user timeout (grpc-go may clear it) the idle bound holds.
			noUT := c
			noUT.UserTimeout = 0
			idle, _ = noUT.Bounds()
			assert.LessOrEqual(t, idle, tc.d, "worst idle without user timeout")
			assert.GreaterOrEqual(t, c.KeepAlive.Idle, time.Second)
			assert.GreaterOrEqual(t, c.KeepAlive.Interval, time.Second)
			assert.GreaterOrEqual(t, c.KeepAlive.Count, 1)
		})
	}
}

func TestForBudgetRejects(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "positive"},
		{-time.Second, "positive"},
		{MinBudget - time.Millisecond, "at least"},
		{2 * time.Second, "at least"},
		{time.Second, "at least"},
		{MaxBudget + time.Second, "at most"},
	} {
		_, err := ForBudget(tc.d)
		require.ErrorIs(t, err, ErrBudget, "%v", tc.d)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestRetransmissions(t *testing.T) {
	ms := time.Millisecond
	c := Config{UserTimeout: 3 * time.Second}
	sends, abort := c.Retransmissions(200*ms, 200*ms)
	assert.Equal(t, []time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms}, sends)
	assert.Equal(t, 3400*ms, abort)
	// 15 ms more RTO and the fourth retransmission misses the deadline.
	sends, abort = c.Retransmissions(215*ms, 215*ms)
	assert.Equal(t, []time.Duration{215 * ms, 430 * ms, 860 * ms, 1720 * ms}, sends)
	assert.Equal(t, 3430*ms, abort)
	c.RTOMax = time.Second
	sends, _ = c.Retransmissions(200*ms, 0)
	assert.Equal(t, []time.Duration{0, 200 * ms, 600 * ms, 1400 * ms, 2400 * ms}, sends, "capped at 1 s")

}

func TestBoundsOutageGrace(t *testing.T) {
	for _, c := range []Config{
		{UserTimeout: 3 * time.Second, KeepAlive: ka(time.Second, time.Second, 1)},
		{UserTimeout: 5 * time.Second, KeepAlive: ka(time.Second, time.Second, 1), PathRTO: RTOForRTT(110 * time.Millisecond)},
	} {
		_, busy := c.Bounds()
		_, earliest := c.Earliest()
		survived := c.OutageSurvived()
		for _, grace := range []time.Duration{300 * time.Millisecond, time.Second} {
			g := c
			g.OutageGrace = grace
			require.NoError(t, g.Validate())
			_, gbusy := g.Bounds()
			_, gearliest := g.Earliest()
			// The probe may leave a grace later, and the whole schedule
			// with it; a LAN's probe then waits 2 SRTT, not a few ms.
			assert.Greater(t, gbusy, busy+grace*7/8, "PathRTO %v grace %v", c.PathRTO, grace)
			assert.LessOrEqual(t, gbusy, busy+grace+grace/8+2*timers.LANRTT+2*time.Millisecond+timers.HoldCheck+2*timers.JiffyMax, "PathRTO %v grace %v", c.PathRTO, grace)
			assert.Equal(t, earliest, gearliest, "the earliest is the user timeout still")
			assert.Equal(t, survived, g.OutageSurvived(), "an outage ending within the user timeout is survived as before")
		}
	}
	c := Config{UserTimeout: 3 * time.Second, KeepAlive: ka(time.Second, time.Second, 1), OutageGrace: 3*time.Second + time.Millisecond}
	assert.ErrorIs(t, c.Validate(), ErrInvalidConfig)
	c.OutageGrace = -time.Millisecond
	assert.ErrorIs(t, c.Validate(), ErrInvalidConfig)
}

func TestWithOutageGrace(t *testing.T) {
	for _, c := range []Config{mustBudget(t, 5*time.Second), mustOnPath(t, 10*time.Second, 110*time.Millisecond)} {
		_, busy := c.Bounds()
		g, err := c.WithOutageGrace(time.Second)
		require.NoError(t, err)
		_, gbusy := g.Bounds()
		assert.Equal(t, time.Second, g.OutageGrace)
		assert.LessOrEqual(t, gbusy, busy, "the busy bound kept")
		assert.Greater(t, gbusy, busy-10*time.Millisecond, "and the user timeout cut no more than it needs")
		assert.Less(t, g.UserTimeout, c.UserTimeout)
		assert.Less(t, g.OutageSurvived(), c.OutageSurvived(), "what it costs")
		t.Logf("UT %v -> %v, busy %v -> %v, outage survived %v -> %v", c.UserTimeout, g.UserTimeout, busy, gbusy, c.OutageSurvived(), g.OutageSurvived())
	}
	for _, d := range []time.Duration{4 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, time.Minute, time.Hour} {
		c := mustBudget(t, d)
		assertLingers(t, c)
		for _, grace := range []time.Duration{500 * time.Millisecond, time.Second, 3 * time.Second} {
			if g, err := c.WithOutageGrace(grace); err == nil {
				assertLingers(t, g) // the cut user timeout's probes: requests arm no guard
			}
			if g, err := c.Lean().WithOutageGrace(grace); err == nil {
				assertLingers(t, g) // the kept schedule's
			}
		}
	}
	_, err := mustBudget(t, 3*time.Second).WithOutageGrace(time.Second)
	assert.ErrorIs(t, err, ErrBudget, "2 s of user timeout has no second to spare")
	_, err = mustBudget(t, 5*time.Second).WithOutageGrace(-time.Second)
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func mustBudget(t *testing.T, d time.Duration) Config {
	c, err := ForBudget(d)
	require.NoError(t, err)
	return c
}

func mustOnPath(t *testing.T, d, rtt time.Duration) Config {
	c, err := ForBudgetOnPath(d, rtt)
	require.NoError(t, err)
	return c
}

func TestOutageSurvived(t *testing.T) {
	for _, tc := range []struct {
		ut, rtoMax time.Duration
	}{
		{3 * time.Second, 0}, {3 * time.Second, time.Second},
		{10 * time.Second, 0}, {10 * time.Second, time.Second},
	} {
		c := Config{UserTimeout: tc.ut, RTOMax: tc.rtoMax}
		got := c.OutageSurvived()
		// It is the worst case: no LAN schedule's last send comes earlier.
		for rto := LANRTO; rto <= LANRTOMax; rto += 10 * time.Millisecond {
			for _, pto := range []time.Duration{0, rto} {
				sends, abort := c.Retransmissions(rto, pto)
				last := sends[len(sends)-1]
				assert.GreaterOrEqual(t, last, got, "UT %v cap %v rto %v", tc.ut, tc.rtoMax, rto)
				assert.Less(t, last, abort)
			}
		}
		t.Logf("UT %v, RTOMax %v: outage surely survived %v", tc.ut, tc.rtoMax, got)
	}
	assert.Zero(t, Config{}.OutageSurvived())
}
