//go:build linux

package integration

import (
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

// quantile is the q-th quantile of sorted d.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// stream is one kind of connection in an outage run: how its client is
// dialed, and what it delivered.
type stream struct {
	name   string
	dial   func(string, string) (net.Conn, error)
	conns  []net.Conn
	sent   []<-chan int
	delays []<-chan []time.Duration
}

// result is a stream kind's delivery delays, sorted, and its held writes.
type result struct {
	delays []time.Duration
	held   int64
}

// throughOutages streams 1 KiB every 20 ms on each kind of connection,
// each streams times, over path for run, blacking it out both ways for
// outage every every.
func throughOutages(t *testing.T, path lab.Path, kinds []*stream, streams int, outage, every, run time.Duration) map[string]result {
	const period = 20 * time.Millisecond
	l := newPathLab(t, path)
	stop := make(chan struct{})
	for range streams {
		for _, k := range kinds {
			c, s := tcpPair(t, l, (&net.ListenConfig{}).Listen, k.dial)
			k.conns = append(k.conns, c)
			k.delays = append(k.delays, delays(s))
			k.sent = append(k.sent, stamped(c, period, stop))
		}
	}
	for range int(run / every) {
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
	out := map[string]result{}
	for _, k := range kinds {
		var r result
		sent := 0
		for _, n := range k.sent {
			sent += <-n
		}
		for _, c := range k.conns {
			if kc, ok := c.(*tuning.Conn); ok {
				r.held += kc.HeldWrites()
			}
			c.Close()
		}
		for _, got := range k.delays {
			r.delays = append(r.delays, <-got...)
		}
		require.Positive(t, len(r.delays), k.name)
		slices.Sort(r.delays)
		d := r.delays
		t.Logf("%s: %d sent, %d delivered, %d writes held, delay p50 %v p90 %v p99 %v max %v", k.name, sent, len(d), r.held,
			quantile(d, .5).Round(time.Millisecond), quantile(d, .9).Round(time.Millisecond),
			quantile(d, .99).Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
		out[k.name] = r
	}
	return out
}

// TestHoldThroughShortOutages: streams of 1 KiB every 20 ms, eight of each
// kind, over a path of 50 ms each way with 2 % loss and a 400 ms blackout
// both ways every 5 s, for two minutes: through Conns with an OutageGrace
// of 1 s (WithOutageGrace, the busy bound kept), through Conns with the default (none), and through bare sockets
// with the same options. With the grace no outage holds a write, and the
// delivery delays' p99 is within 10 % of the bare sockets', give or take
// one RTO and a margin (where each stream was in its backoff when an
// outage ended moves a run's p99 by hundreds of milliseconds either way).
// Without it the send hold stops writes after an RTO of silence, which
// keeps the busy bound: the figures of both are in BENCHMARKS.md, part 10.
func TestHoldThroughShortOutages(t *testing.T) {
	t.Parallel()
	c, err := tuning.ForBudgetOnPath(10*time.Second, 110*time.Millisecond)
	require.NoError(t, err)
	g, err := c.WithOutageGrace(time.Second)
	require.NoError(t, err)
	kinds := []*stream{
		{name: "OutageGrace 1s", dial: defaultDial(g)},
		{name: "no OutageGrace", dial: defaultDial(c)},
		{name: "bare socket", dial: c.Dialer().Dial},
	}
	path := lab.Path{Up: lab.Shape{Delay: 50 * time.Millisecond, Loss: 0.02}, Down: lab.Shape{Delay: 50 * time.Millisecond, Loss: 0.02}}
	got := throughOutages(t, path, kinds, 8, 400*time.Millisecond, 5*time.Second, 2*time.Minute)
	grace, held, bare := got[kinds[0].name], got[kinds[1].name], got[kinds[2].name]
	rto := c.PathRTO
	assert.LessOrEqual(t, quantile(grace.delays, .99), quantile(bare.delays, .99)*11/10+rto+200*time.Millisecond,
		"with OutageGrace, p99 within 10 %% of the bare sockets', give or take an RTO (%v) and 200 ms", rto)
	assert.Positive(t, held.held, "without OutageGrace the hold stops writes after an RTO of silence")
}
