//go:build linux

package integration

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// lossyPath loses 2 % of the packets each way, 5 ms each way: a lost
// zero-window probe or answer every 25 round trips.
var lossyPath = lab.Path{Up: lab.Shape{Delay: 5 * time.Millisecond, Loss: 0.02}, Down: lab.Shape{Delay: 5 * time.Millisecond, Loss: 0.02}}

// TestGuardKeepsPausedReadersOnLossyPath: at the smallest budget ForBudget
// takes (3 s: user timeout 2 s), writers through Listen and DialFunc fill
// the windows of readers that never read, over a path that loses 2 % of
// packets each way, for a minute: none is cut, although probes and their
// answers were lost (the verdict of one lost answer, the guard's before,
// would have cut them).
func TestGuardKeepsPausedReadersOnLossyPath(t *testing.T) {
	t.Parallel()
	const each, pause = 8, time.Minute
	c, err := tuning.ForBudget(3 * time.Second)
	require.NoError(t, err)
	l := newPathLab(t, lossyPath)
	type writer struct {
		name    string
		conn    net.Conn
		written <-chan error
	}
	var writers []writer
	// The readers are stock sockets that never read: their own keepalive
	// (one probe at ForBudget(3s)) would cut them on this path, which the
	// writer's guard cannot help.
	for range each {
		_, server := tcpPair(t, l, c.Listen, (&net.Dialer{KeepAlive: -1}).Dial)
		writers = append(writers, writer{"Listen", server, sendPattern(server, pausedSize, 0)})
		client, _ := tcpPair(t, l, (&net.ListenConfig{KeepAlive: -1}).Listen, defaultDial(c))
		writers = append(writers, writer{"DialFunc", client, sendPattern(client, pausedSize, 0)})
	}
	// The old verdict: silence past 1.5 capped probe intervals with a
	// probe out. Counted from samples, to show the path reached it.
	oldVerdict, shut := 0, 0
	deadline := time.Now().Add(pause)
	for time.Now().Before(deadline) {
		for _, w := range writers {
			select {
			case err := <-w.written:
				require.Failf(t, "a live paused reader's writer ended", "%s: %v", w.name, err)
			default:
			}
			s, err := tuning.Inspect(w.conn)
			require.NoError(t, err)
			if s.Shut() {
				shut++
				if s.Probes >= 1 && s.SinceACK > 1500*time.Millisecond {
					oldVerdict++
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, w := range writers {
		s, err := tuning.Inspect(w.conn)
		require.NoError(t, err)
		assert.Equal(t, tuning.TCPEstablished, s.State, "%s: alive after %v", w.name, pause)
		assert.True(t, s.Guarded, w.name)
	}
	st := l.PathStats()
	t.Logf("%d writers x %v (%v of connection-time) to readers that never read, %d and %d packets lost up and down: none cut; %d samples found the window shut, %d of them past the old verdict (a probe out, nothing heard for 1.5 s)",
		len(writers), pause, time.Duration(len(writers))*pause, st.Lost[lab.Up], st.Lost[lab.Down], shut, oldVerdict)
	assert.Positive(t, shut, "the windows shut")
	assert.Positive(t, oldVerdict, "the path lost probes or answers: the case one lost answer used to cut")
}
