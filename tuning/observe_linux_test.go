package tuning

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is an Observer that keeps every Event.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Observe(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) ended(side Side) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Kind == EventEnded && e.Side == side {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) count(k EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// waitEnded waits up to limit for an ended event on side.
func (r *recorder) waitEnded(t *testing.T, side Side, limit time.Duration) Event {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if e := r.ended(side); len(e) > 0 {
			require.Len(t, e, 1, "one end per connection")
			return e[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %v connection ended within %v", side, limit)
	return Event{}
}

// observedPair connects a DialFunc client to a Listen server, both with c.
func observedPair(t *testing.T, c Config) (client, server net.Conn) {
	t.Helper()
	ln, err := c.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn
		}
		close(accepted)
	}()
	client, err = c.DialFunc(nil)(context.Background(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	server = <-accepted
	require.NotNil(t, server)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestObserverOpenedAndClosed(t *testing.T) {
	for _, guard := range []bool{true, false} {
		t.Run(map[bool]string{true: "guarded", false: "unguarded"}[guard], func(t *testing.T) {
			rec := &recorder{}
			c := guardUT
			c.NoGuard = !guard
			c.Observer = rec
			client, server := observedPair(t, c)
			assert.Equal(t, 2, rec.count(EventOpened))
			require.IsType(t, &Conn{}, server, "the type does not depend on NoGuard or Observer")
			assert.Equal(t, guard, server.(*Conn).Guarded())
			assert.IsType(t, &net.TCPConn{}, server.(interface{ NetConn() net.Conn }).NetConn())

			require.NoError(t, client.Close())
			_, err := server.Read(make([]byte, 1))
			require.Error(t, err) // EOF: half-closed, not yet ended
			assert.Empty(t, rec.ended(SideAccepted))
			require.NoError(t, server.Close())
			for _, side := range []Side{SideDialed, SideAccepted} {
				e := rec.ended(side)
				require.Len(t, e, 1, "%v", side)
				assert.Equal(t, CauseClosed, e[0].Cause)
				assert.Equal(t, guard, e[0].Guarded)
				assert.Nil(t, e[0].Err)
			}
		})
	}
}

func TestObserverReset(t *testing.T) {
	rec := &recorder{}
	c := guardUT
	c.Observer = rec
	client, server := observedPair(t, c)
	require.NoError(t, client.(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn).SetLinger(0))
	require.NoError(t, client.Close()) // RST
	_, err := server.Read(make([]byte, 1))
	require.ErrorIs(t, err, syscall.ECONNRESET)
	e := rec.waitEnded(t, SideAccepted, time.Second)
	assert.Equal(t, CauseReset, e.Cause)
	assert.ErrorIs(t, e.Err, syscall.ECONNRESET)
	assert.GreaterOrEqual(t, e.SinceACK, time.Duration(0))
	server.Close()
	assert.Len(t, rec.ended(SideAccepted), 1, "Close after the reset adds no second end")
}

// A live reader that stops reading is cut by the kernel's zero-window rule
// when unguarded, and by StallTimeout when guarded: either way the end is
// counted as a stall, not as a reap.
func TestObserverCountsLiveCutsAsStalls(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     func() Config
		limit time.Duration
	}{
		{"unguarded zero window", func() Config { c := guardUT; c.NoGuard = true; return c }, 5 * time.Second},
		{"guarded, StallTimeout", func() Config { c := guardUT; c.StallTimeout = 2 * time.Second; return c }, 8 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			c := tc.c()
			c.Observer = rec
			client, server := observedPair(t, c)
			shrinkBuffers(t, client, syscall.SO_RCVBUF)
			errc := writeAll(server.(interface {
				net.Conn
				CloseWrite() error
			}), 64<<20)
			e := rec.waitEnded(t, SideAccepted, tc.limit)
			assert.Equal(t, CauseWindowStall, e.Cause, "err %v, kernel %+v", e.Err, e.Kernel)
			assert.ErrorIs(t, e.Err, syscall.ETIMEDOUT)
			// The reader answered probes to the end: its last answer came
			// within one probe interval (at most a user timeout) of the cut.
			assert.Less(t, e.SinceACK, 2*c.UserTimeout)
			assert.ErrorIs(t, <-errc, syscall.ETIMEDOUT)
		})
	}
}

func TestInspect(t *testing.T) {
	c := guardUT
	client, server := observedPair(t, c)

	s, err := Inspect(client)
	require.NoError(t, err)
	assert.Equal(t, TCPEstablished, s.State)
	assert.Equal(t, Alive, s.Verdict())
	assert.True(t, s.Guarded)
	assert.True(t, s.OptionsKnown)
	assert.Equal(t, c.GuardHolds(), s.Options)
	assert.Greater(t, s.RTO, time.Duration(0))

	t.Run("through *tls.Conn", func(t *testing.T) {
		tc := tls.Client(client, &tls.Config{InsecureSkipVerify: true}) // never handshakes
		s, err := Inspect(tc)
		require.NoError(t, err)
		assert.True(t, s.Guarded)
		assert.Equal(t, TCPEstablished, s.State)
	})

	t.Run("on a RawConn", func(t *testing.T) {
		rc, err := server.(syscall.Conn).SyscallConn()
		require.NoError(t, err)
		s, err := InspectRawConn(rc)
		require.NoError(t, err)
		assert.False(t, s.Guarded, "a RawConn does not know its guard")
		assert.Equal(t, TCPEstablished, s.State)
	})

	t.Run("a paused reader: window-stalled, the guard holds it", func(t *testing.T) {
		shrinkBuffers(t, client, syscall.SO_RCVBUF)
		writeAll(server.(*GuardedConn), 64<<20)
		var s Snapshot
		require.Eventually(t, func() bool {
			s, err = Inspect(server)
			return err == nil && s.Shut()
		}, 5*time.Second, 20*time.Millisecond)
		assert.Equal(t, WindowStalled, s.Verdict())
		assert.Equal(t, c.UserTimeout, s.Options.UserTimeout, "the guard's timeout, not the 0 the socket holds")
		assert.Zero(t, s.UnackedBytes)
		assert.Greater(t, s.NotSentBytes, uint32(0))
		assert.LessOrEqual(t, s.EndsIn(), c.GuardBound())
	})

	t.Run("not TCP", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		_, err := Inspect(a)
		assert.ErrorIs(t, err, ErrNotTCP)
	})
}

// A client whose reader closes the connection at EOF (pgx's does) may get
// there before its writer's Write has reported the kernel's ETIMEDOUT: the
// kernel ends both calls at once, the error goes to one of them, and the
// reader's EOF can win. Close must still report the kernel's verdict, not
// a Close. Many connections at once, so that the reader wins some races.
func TestObserverReapWhileReaderClosesAtEOF(t *testing.T) {
	const n = 16
	c := guardUT
	c.NoGuard = true // the kernel's zero-window rule cuts the writer
	var wg sync.WaitGroup
	recs := make([]*recorder, n)
	for i := range n {
		recs[i] = &recorder{}
		c := c
		c.Observer = recs[i]
		client, server := observedPair(t, c)
		shrinkBuffers(t, client, syscall.SO_RCVBUF) // the client never reads
		wg.Go(func() {
			buf := make([]byte, 1)
			for {
				if _, err := server.Read(buf); err != nil {
					server.Close() // at once, as pgx's reader does at EOF
					return
				}
			}
		})
		wg.Go(func() {
			big := make([]byte, 1<<20)
			for {
				if _, err := server.Write(big); err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for i, rec := range recs {
		e := rec.waitEnded(t, SideAccepted, 5*time.Second)
		assert.Equal(t, CauseWindowStall, e.Cause, "connection %d: err %v", i, e.Err)
		assert.ErrorIs(t, e.Err, syscall.ETIMEDOUT, "connection %d", i)
	}
}

// ConnDialer's connections are DialFunc's: the kit's *Conn, the options
// set, observed; its Timeout bounds the dial.
func TestConnDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	rec := &recorder{}
	c := guardUT
	c.Observer = rec
	d := c.ConnDialer()
	assert.Equal(t, DialTimeout, d.Timeout)
	conn, err := d.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	require.IsType(t, &Conn{}, conn)
	got, err := Read(conn)
	require.NoError(t, err)
	assert.Equal(t, c.UserTimeout, got.UserTimeout)
	assert.Equal(t, 1, rec.count(EventOpened), "observed")
	require.NoError(t, conn.Close())

	d.Timeout = time.Nanosecond
	_, err = d.DialContext(context.Background(), "tcp", ln.Addr().String())
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the Timeout bounds the dial")
}

func TestConnDialerZeroAndDialTimeout(t *testing.T) {
	_, err := (&ConnDialer{}).Dial("tcp", "127.0.0.1:1")
	assert.ErrorContains(t, err, "Config.ConnDialer", "a zero ConnDialer says how to make one")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		if conn, err := ln.Accept(); err == nil {
			conn.Close()
		}
	}()
	conn, err := guardUT.ConnDialer().DialTimeout("tcp", ln.Addr().String(), 0)
	require.NoError(t, err, "a zero timeout is none of its own, as net.DialTimeout's")
	require.IsType(t, &Conn{}, conn)
	conn.Close()
}
