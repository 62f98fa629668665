package tuning

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ka(idle, intvl time.Duration, count int) net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: true, Idle: idle, Interval: intvl, Count: count}
}

func TestBounds(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name       string
		c          Config
		idle, busy time.Duration
	}{
		// The three cases measured on a 6.x kernel (DEVELOPERS.md): 4.05 s, 4.2 s, 5.1 s.
		{"UT 4s idle 2s intvl 1s count 10: count ignored", Config{UserTimeout: 4 * s, KeepAlive: ka(2*s, s, 10)}, 4 * s, 4 * s},
		{"UT 1s below idle 3s: one probe must go unanswered", Config{UserTimeout: s, KeepAlive: ka(3*s, s, 9)}, 4 * s, s},
		{"no UT: idle + count*interval", Config{UserTimeout: 0, KeepAlive: ka(2*s, s, 3)}, 5 * s, RetriesTimeout(15)},
		{"UT between probes rounds up to the next probe", Config{UserTimeout: 4500 * time.Millisecond, KeepAlive: ka(2*s, s, 1)}, 5 * s, 4500 * time.Millisecond},
		{"UT equal to idle", Config{UserTimeout: 2 * s, KeepAlive: ka(2*s, 3*s, 1)}, 5 * s, 2 * s},
		{"Go defaults", Config{UserTimeout: 0, KeepAlive: ka(0, 0, 0)}, 15*s + 9*15*s, RetriesTimeout(15)},
		{"unchanged fields take Linux sysctl defaults", Config{UserTimeout: 0, KeepAlive: ka(Unchanged, Unchanged, Unchanged)}, 7200*s + 9*75*s, RetriesTimeout(15)},
		{"keepalive off never detects idle", Config{UserTimeout: 3 * s}, Never, 3 * s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idle, busy := tc.c.Bounds()
			assert.Equal(t, tc.idle, idle, "idle")
			assert.Equal(t, tc.busy, busy, "busy")
		})
	}
}

func TestRetriesTimeout(t *testing.T) {
	assert.Equal(t, 924600*time.Millisecond, RetriesTimeout(15))
	assert.Equal(t, 600*time.Millisecond, RetriesTimeout(1))
	assert.Equal(t, time.Duration(0), RetriesTimeout(0))
	assert.Equal(t, 1023*200*time.Millisecond, RetriesTimeout(9))
	assert.Equal(t, 1023*200*time.Millisecond+120*time.Second, RetriesTimeout(10))
}

func TestForBudget(t *testing.T) {
	for _, d := range []time.Duration{
		MinBudget, 2500 * time.Millisecond, 3 * time.Second, 4 * time.Second, 5 * time.Second,
		10 * time.Second, 20 * time.Second, 61 * time.Second, time.Hour, MaxBudget,
	} {
		t.Run(d.String(), func(t *testing.T) {
			c, err := ForBudget(d)
			require.NoError(t, err)
			require.NoError(t, c.Validate())
			idle, busy := c.Bounds()
			whole := d.Truncate(time.Second)
			assert.Equal(t, whole, idle, "idle bound")
			assert.Equal(t, whole, busy, "busy bound")
			// Without the user timeout (grpc-go may clear it) the idle bound holds.
			noUT := c
			noUT.UserTimeout = 0
			idle, _ = noUT.Bounds()
			assert.Equal(t, whole, idle, "idle bound without user timeout")
			assert.GreaterOrEqual(t, c.KeepAlive.Idle, time.Second)
			assert.GreaterOrEqual(t, c.KeepAlive.Interval, time.Second)
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
