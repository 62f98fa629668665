package tuning

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

func TestForBudgetWithIdleLimit(t *testing.T) {
	for _, d := range []time.Duration{3 * time.Second, 30 * time.Second, 5 * time.Minute, 10 * time.Minute, time.Hour, 10 * time.Hour} {
		plain, err := ForBudget(d)
		require.NoError(t, err)
		for _, limit := range []time.Duration{2 * time.Second, 30 * time.Second, IdleLimitAzureLB, IdleLimitAWSNLB, IdleLimitGCPCloud} {
			c, err := ForBudgetWithIdleLimit(d, limit)
			require.NoError(t, err, "budget %v, limit %v", d, limit)
			idle, intvl := c.KeepAlive.Idle, c.KeepAlive.Interval
			assert.Less(t, idle+timers.Slack(idle), limit, "budget %v: the first probe comes before the middlebox forgets", d)
			assert.Less(t, intvl+timers.Slack(intvl), limit, "budget %v: so does every retry", d)
			ib, bb := c.Bounds()
			assert.LessOrEqual(t, ib, d, "budget %v, limit %v: idle within the budget", d, limit)
			assert.LessOrEqual(t, bb, d, "budget %v, limit %v: busy within the budget", d, limit)
			if pi := plain.KeepAlive.Idle; pi+timers.Slack(pi) < limit && plain.KeepAlive.Interval+timers.Slack(plain.KeepAlive.Interval) < limit {
				assert.Equal(t, plain, c, "budget %v, limit %v: ForBudget's schedule is below the limit already", d, limit)
			}
		}
	}
	_, err := ForBudgetWithIdleLimit(time.Minute, time.Second)
	assert.ErrorIs(t, err, ErrIdleLimit, "a one-second idle may fire late")
	_, err = ForBudgetWithIdleLimit(time.Second, IdleLimitAWSNLB)
	assert.ErrorIs(t, err, ErrBudget, "the budget is checked as ForBudget checks it")
}

// The keepalive a 30-minute budget gets behind the common middleboxes.
func ExampleForBudgetWithIdleLimit() {
	c, _ := ForBudget(30 * time.Minute)
	fmt.Printf("no limit: idle %v, interval %v, %d probes an hour\n", c.KeepAlive.Idle, c.KeepAlive.Interval, int(time.Hour/c.KeepAlive.Idle))
	for _, m := range []struct {
		name  string
		limit time.Duration
	}{{"Azure LB", IdleLimitAzureLB}, {"AWS NLB", IdleLimitAWSNLB}, {"GCP", IdleLimitGCPCloud}} {
		kept, err := ForBudgetWithIdleLimit(30*time.Minute, m.limit)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s (%v): idle %v, interval %v, user timeout %v, %d probes an hour\n",
			m.name, m.limit, kept.KeepAlive.Idle, kept.KeepAlive.Interval, kept.UserTimeout, int(time.Hour/kept.KeepAlive.Idle))
	}
	// Output:
	// no limit: idle 11m39s, interval 5m0s, 5 probes an hour
	// Azure LB (4m0s): idle 3m33s, interval 3m0s, user timeout 18m33s, 16 probes an hour
	// AWS NLB (5m50s): idle 5m11s, interval 5m0s, user timeout 20m11s, 11 probes an hour
	// GCP (10m0s): idle 8m53s, interval 5m0s, user timeout 23m53s, 6 probes an hour
}
