package timers

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestLastSend: lastSend, which skips the capped phase in one division,
// agrees with the schedule Retransmissions lists.
func TestLastSend(t *testing.T) {
	s, ms := time.Second, time.Millisecond
	for _, p := range []Params{{UserTimeout: 3 * s}, {UserTimeout: 3 * s, RTOMax: s},
		{UserTimeout: 10 * s, RTOMax: 1300 * ms}, {UserTimeout: 900 * s}, {UserTimeout: 7 * s, RTOMax: 400 * ms}} {
		for rto := LANRTO; rto <= LANRTOMax; rto += 7 * ms {
			for _, pto := range []time.Duration{0, 13 * ms, rto} {
				sends, abort := Retransmissions(p, rto, pto)
				last, abort2 := p.lastSend(rto, pto)
				assert.Equal(t, sends[len(sends)-1], last, "%+v rto %v pto %v", p, rto, pto)
				assert.Equal(t, abort, abort2)
			}
		}
	}
}
