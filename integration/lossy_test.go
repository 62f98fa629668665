//go:build linux

package integration

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
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
	dial := c.DialFunc(nil)
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
		client, _ := tcpPair(t, l, (&net.ListenConfig{KeepAlive: -1}).Listen, func(network, addr string) (net.Conn, error) {
			return dial(context.Background(), network, addr)
		})
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

// stamped streams 1 KiB messages every period to w, each carrying the
// time it was due, until stop; it returns how many it sent.
func stamped(w io.Writer, period time.Duration, stop <-chan struct{}) <-chan int {
	n := make(chan int, 1)
	go func() {
		msg := make([]byte, 1024)
		start := time.Now()
		i := 0
		for ; ; i++ {
			due := start.Add(time.Duration(i) * period)
			select {
			case <-stop:
				n <- i
				return
			case <-time.After(time.Until(due)):
			}
			binary.BigEndian.PutUint64(msg, uint64(due.UnixNano()))
			if _, err := w.Write(msg); err != nil {
				n <- i
				return
			}
		}
	}()
	return n
}

// delays reads stamped messages from r until it ends, and returns each
// one's delay from when it was due.
func delays(r io.Reader) <-chan []time.Duration {
	out := make(chan []time.Duration, 1)
	go func() {
		var d []time.Duration
		msg := make([]byte, 1024)
		for {
			if _, err := io.ReadFull(r, msg); err != nil {
				out <- d
				return
			}
			d = append(d, time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(msg)))))
		}
	}()
	return out
}

// quantile is the q-th quantile of d, sorted.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// TestHoldThroughShortOutages: streams of 1 KiB every 20 ms through the
// kit's Conn, and beside them bare sockets with the same options, eight
// of each, over a path of 50 ms each way with 2 % loss and a 400 ms
// blackout both ways every 5 s. No write of a Conn is held (the send hold
// waits for silences near the user timeout), and their delivery delays
// match the bare sockets': p99 within 10 %, give or take one RTO and a
// margin (where each stream was in its backoff when an outage ended moves
// a run's p99 by hundreds of milliseconds either way).
func TestHoldThroughShortOutages(t *testing.T) {
	t.Parallel()
	const streams, period, outage, every, run = 8, 20 * time.Millisecond, 400 * time.Millisecond, 5 * time.Second, time.Minute
	c, err := tuning.ForBudgetOnPath(10*time.Second, 110*time.Millisecond)
	require.NoError(t, err)
	l := newPathLab(t, lab.Path{Up: lab.Shape{Delay: 50 * time.Millisecond, Loss: 0.02}, Down: lab.Shape{Delay: 50 * time.Millisecond, Loss: 0.02}})
	dial := c.DialFunc(nil)
	stop := make(chan struct{})
	type side struct {
		conns   []net.Conn
		sent    []<-chan int
		delays  []<-chan []time.Duration
		servers []net.Conn
	}
	var kit, bare side
	for range streams {
		k, ks := tcpPair(t, l, (&net.ListenConfig{}).Listen, func(network, addr string) (net.Conn, error) {
			return dial(context.Background(), network, addr)
		})
		b, bs := tcpPair(t, l, (&net.ListenConfig{}).Listen, c.Dialer().Dial)
		require.IsType(t, &tuning.Conn{}, k)
		require.IsType(t, &net.TCPConn{}, b)
		for _, x := range []struct {
			s    *side
			c, r net.Conn
		}{{&kit, k, ks}, {&bare, b, bs}} {
			x.s.conns, x.s.servers = append(x.s.conns, x.c), append(x.s.servers, x.r)
			x.s.delays = append(x.s.delays, delays(x.r))
			x.s.sent = append(x.s.sent, stamped(x.c, period, stop))
		}
	}
	for range int(run / every) { // the outages
		time.Sleep(every - outage)
		for _, d := range []lab.Direction{lab.Up, lab.Down} {
			require.NoError(t, l.Blackhole(d, true))
		}
		time.Sleep(outage)
		for _, d := range []lab.Direction{lab.Up, lab.Down} {
			require.NoError(t, l.Blackhole(d, false))
		}
	}
	time.Sleep(every) // the last outage's recovery
	close(stop)
	rto := 300 * time.Millisecond // the path's RTO, at least
	if s, err := tuning.Inspect(bare.conns[0]); err == nil && s.BaseRTO() > rto {
		rto = s.BaseRTO()
	}
	summary := func(name string, s side) []time.Duration {
		sent := 0
		for _, n := range s.sent {
			sent += <-n
		}
		for _, c := range s.conns {
			c.Close()
		}
		var d []time.Duration
		for _, got := range s.delays {
			d = append(d, <-got...)
		}
		require.Positive(t, len(d), name)
		slices.Sort(d)
		t.Logf("%s: %d sent, %d delivered, delay p50 %v p90 %v p99 %v max %v", name, sent, len(d), quantile(d, .5).Round(time.Millisecond),
			quantile(d, .9).Round(time.Millisecond), quantile(d, .99).Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
		return d
	}
	held := int64(0)
	for _, k := range kit.conns {
		held += k.(*tuning.Conn).HeldWrites()
	}
	dk, db := summary("kit", kit), summary("bare", bare)
	assert.Zero(t, held, "no outage of 400 ms holds a write")
	assert.LessOrEqual(t, quantile(dk, .99), quantile(db, .99)*11/10+rto+200*time.Millisecond,
		"the kit's p99 within 10 %% of the bare sockets', give or take an RTO (%v) and 200 ms", rto)
}
