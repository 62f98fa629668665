package tuning

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestGuardDecide(t *testing.T) {
	const ut = 4 * time.Second // period 1 s, extend 2 s, alive 5 s
	p := newGuardParams(ut)
	now := time.Unix(1000, 0)
	rto := 200 * time.Millisecond
	shut := func(sinceSend, sinceAck time.Duration) windowSample {
		return windowSample{notsent: 1 << 20, sinceSend: sinceSend, sinceAck: sinceAck, rto: rto}
	}
	for _, tc := range []struct {
		name     string
		sample   windowSample
		lastOpen time.Time
		ut       time.Duration
		want     guardAction
	}{
		{name: "connection ended", sample: windowSample{closed: true, notsent: 5}, ut: ut,
			want: guardAction{stop: true}},
		{name: "queue empty: idle", sample: windowSample{}, ut: ut,
			want: guardAction{idle: true}},
		{name: "queue empty after a raise: restore and idle", sample: windowSample{}, ut: 9 * time.Second,
			want: guardAction{idle: true, setUT: ut}},
		{name: "data in flight: nothing to guard", sample: windowSample{unacked: 3, notsent: 100}, ut: ut,
			want: guardAction{}},
		{name: "window open again after a raise: restore", sample: windowSample{unacked: 3, notsent: 100}, ut: 30 * time.Second,
			want: guardAction{setUT: ut}},
		{name: "shut lately: the configured timeout is still ahead", sample: shut(time.Second, 100*time.Millisecond), ut: ut,
			want: guardAction{}},
		{name: "shut long, peer answers: deadline kept extend ahead of the last send", sample: shut(10*time.Second, 300*time.Millisecond), ut: ut,
			want: guardAction{setUT: 12 * time.Second}},
		{name: "counts from the later of last send and last open", sample: shut(10*time.Second, 300*time.Millisecond), lastOpen: now.Add(-6 * time.Second), ut: ut,
			want: guardAction{setUT: 8 * time.Second}},
		{name: "rounds up to the kernel's millisecond", sample: shut(10*time.Second+300*time.Microsecond, 0), ut: ut,
			want: guardAction{setUT: 12*time.Second + time.Millisecond}},
		{name: "never lowers what it raised", sample: shut(10*time.Second, 0), ut: 20 * time.Second,
			want: guardAction{}},
		{name: "ACK just young enough: alive", sample: shut(10*time.Second, 5*time.Second+2*rto), ut: ut,
			want: guardAction{setUT: 12 * time.Second}},
		{name: "probes unanswered: let the kernel's deadline run out", sample: shut(10*time.Second, 5*time.Second+2*rto+time.Millisecond), ut: 11 * time.Second,
			want: guardAction{}},
		{name: "capped at the kernel's limit", sample: shut(MaxUserTimeout, 0), ut: ut,
			want: guardAction{setUT: MaxUserTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := guardState{lastOpen: tc.lastOpen, ut: tc.ut}
			got := p.decide(now, tc.sample, &st)
			assert.Equal(t, tc.want, got)
			if !tc.sample.shut() && !tc.sample.closed {
				assert.Equal(t, now, st.lastOpen, "an open window or empty queue is remembered")
			}
		})
	}
}

func TestGuardBound(t *testing.T) {
	c, err := ForBudget(20 * time.Second)
	assert.NoError(t, err)
	// alive 25 s + extend 10 s + period 5 s + 3 RTOs.
	assert.Equal(t, 40*time.Second+600*time.Millisecond, c.GuardBound())
}
