package tuning

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestHoldSilent(t *testing.T) {
	rto := 210 * time.Millisecond
	silent := windowSample{unacked: 40, sinceAck: rto, rto: rto}
	assert.True(t, silent.silent(), "data in flight, nothing heard for an RTO, no RTO yet: wait")
	for name, s := range map[string]windowSample{
		"heard within the RTO":          {unacked: 40, sinceAck: rto - time.Millisecond, rto: rto},
		"nothing in flight":             {unacked: 0, sinceAck: time.Hour, rto: rto},
		"the RTO has fired":             {unacked: 40, retransmits: 1, sinceAck: rto, rto: rto},
		"the kernel ended it":           {closed: true, unacked: 40, sinceAck: rto, rto: rto},
		"no RTO known (not Linux, ...)": {unacked: 40, sinceAck: rto},
	} {
		assert.False(t, s.silent(), name)
	}
}
