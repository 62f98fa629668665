package clients

import (
	"context"
	"database/sql"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// budget is what every client here is given: tuning.ForBudget(budget).
const budget = 5 * time.Second

func kit(t *testing.T) tuning.Config {
	t.Helper()
	c, err := tuning.ForBudget(budget)
	require.NoError(t, err)
	return c
}

// ends is the kit's Observer for a client's connections: it keeps each
// end and when it came.
type ends struct {
	mu     sync.Mutex
	events []tuning.Event
	at     []time.Time
}

func (e *ends) Observe(ev tuning.Event) {
	if ev.Kind != tuning.EventEnded {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events, e.at = append(e.events, ev), append(e.at, time.Now())
}

// since returns the ends that came after t.
func (e *ends) since(t time.Time) ([]tuning.Event, []time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var evs []tuning.Event
	var at []time.Time
	for i, a := range e.at {
		if a.After(t) {
			evs, at = append(evs, e.events[i]), append(at, a)
		}
	}
	return evs, at
}

// observed returns c with an ends as its Observer.
func observed(c tuning.Config) (tuning.Config, *ends) {
	e := &ends{}
	c.Observer = e
	return c, e
}

// dialed remembers the connections a dial function made.
type dialed struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (d *dialed) wrap(dial tuning.DialContextFunc) tuning.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err == nil {
			d.mu.Lock()
			d.conns = append(d.conns, conn)
			d.mu.Unlock()
		}
		return conn, err
	}
}

func (d *dialed) last(t *testing.T) net.Conn {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	require.NotEmpty(t, d.conns, "the client dialed nothing through the kit")
	return d.conns[len(d.conns)-1]
}

// settingsOnSocket checks that the client's own socket holds c's options
// (the guard's resting figures for a guarded connection).
func settingsOnSocket(t *testing.T, conn net.Conn, c tuning.Config) {
	t.Helper()
	want := c
	if snap, err := tuning.Inspect(conn); err == nil && snap.Guarded {
		want = c.GuardHolds()
	}
	// A guard holds the user timeout at 0 while data it saw written is
	// unacknowledged and lingers so, then puts it back: within a user
	// timeout and a half of the last write.
	var got tuning.Config
	assert.EventuallyWithT(t, func(ct *assert.CollectT) {
		var err error
		got, err = tuning.Read(conn)
		require.NoError(ct, err)
		assert.Equal(ct, want.UserTimeout, got.UserTimeout)
	}, 3*c.UserTimeout/2+2*time.Second, 10*time.Millisecond, "TCP_USER_TIMEOUT on the client's socket")
	assert.Equal(t, want.UserTimeout, got.UserTimeout, "TCP_USER_TIMEOUT on the client's socket")
	assert.Equal(t, want.KeepAlive, got.KeepAlive, "keepalive on the client's socket")
}

// outcome is one vanishing: how long the client's call took to fail
// after it, with what error, and the kit's verdict on the connection.
type outcome struct {
	took  time.Duration
	err   error
	cause tuning.Cause
	bound time.Duration
}

// vanish makes the server host vanish while op runs and measures op's
// failure. idle: op is started first and the server vanishes while it
// waits (its request delivered, nothing unacknowledged); busy: the server
// vanishes first and op sends into the silence. The bound is Bounds' for
// the case, GuardBound for a busy guarded connection.
func vanish(t *testing.T, l *lab.Lab, c tuning.Config, e *ends, busy bool, op func(context.Context) error) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 6*budget)
	defer cancel()
	errc := make(chan error, 1)
	if !busy {
		go func() { errc <- op(ctx) }()
		time.Sleep(500 * time.Millisecond) // the request delivered and acknowledged
	}
	require.NoError(t, l.Vanish(lab.Server))
	start := time.Now()
	if busy {
		go func() { errc <- op(ctx) }()
	}
	var o outcome
	select {
	case o.err = <-errc:
		o.took = time.Since(start)
	case <-time.After(4 * budget):
		t.Fatalf("the call had not failed %v after the vanishing", 4*budget)
	}
	idle, busyBound := c.Bounds()
	o.bound = idle
	evs, _ := e.since(start)
	for _, ev := range evs {
		if ev.Cause.Reaped() || o.cause == tuning.CauseNone {
			o.cause = ev.Cause
		}
		if busy {
			o.bound = busyBound
			if ev.Guarded {
				o.bound = c.GuardBound()
			}
		}
	}
	if busy && len(evs) == 0 {
		o.bound = busyBound
	}
	t.Logf("%s: failed after %v (bound %v) with %q (Classify: %v); the Observer: %v", map[bool]string{false: "idle", true: "busy"}[busy],
		o.took.Round(time.Millisecond), o.bound, o.err, tuning.Classify(o.err), o.cause)
	assert.Error(t, o.err, "the call failed")
	assert.LessOrEqual(t, o.took, o.bound+lab.Late, "within the bound plus the lab's tolerance")
	want := tuning.CauseReapedIdle
	if busy {
		want = tuning.CauseReapedBusy
	}
	assert.Equal(t, want, o.cause, "the Observer counts the kernel's reap, whatever error the client shows")
	return o
}

// calls are the three a proof makes of a client.
type calls struct {
	waiting func(context.Context) error // waits on the server: a blocking query, a pop, a subscription
	sending func(context.Context) error // sends big, 16 MiB, into the silence
	next    func(context.Context) error // a plain call, once the path is back
}

// big is what a busy call sends: more than a socket's buffers hold.
var big = strings.Repeat("x", 16<<20)

// prove makes the server vanish while the client waits, then while it
// sends, each failure within its bound and counted by the Observer, and
// checks after each that the client serves the next call.
func prove(t *testing.T, l *lab.Lab, c tuning.Config, e *ends, k calls) {
	t.Helper()
	vanish(t, l, c, e, false, k.waiting)
	restore(t, l, k.next)
	vanish(t, l, c, e, true, k.sending)
	restore(t, l, k.next)
}

// sqlCalls are calls through database/sql: sleep a query that waits,
// length one that returns the length of its one parameter.
func sqlCalls(db *sql.DB, sleep, length string) calls {
	exec := func(ctx context.Context, query string, args ...any) error {
		_, err := db.ExecContext(ctx, query, args...)
		return err
	}
	return calls{
		waiting: func(ctx context.Context) error { return exec(ctx, sleep) },
		sending: func(ctx context.Context) error { return exec(ctx, length, big) },
		next:    func(ctx context.Context) error { return exec(ctx, "SELECT 1") },
	}
}

// restore brings the server host back and checks that the client serves
// the next call.
func restore(t *testing.T, l *lab.Lab, op func(context.Context) error) {
	t.Helper()
	require.NoError(t, l.Restore(lab.Server))
	ctx, cancel := context.WithTimeout(t.Context(), 2*budget)
	defer cancel()
	assert.NoError(t, op(ctx), "the next call once the path is back")
}

// stockHangs checks that the client's stock setup, its call waiting on a
// server that vanished, is still waiting three budgets later. The call is
// then ended by cancelling its context, and by stop if not nil (for a
// client that ignores its context, as go-redis does by default).
func stockHangs(t *testing.T, l *lab.Lab, op func(context.Context) error, stop func()) {
	t.Helper()
	stillWaiting(t, l, "stock", 3*budget, op, stop)
}

// stillWaiting checks that op, waiting on a server that vanished, has not
// failed after wait.
func stillWaiting(t *testing.T, l *lab.Lab, what string, wait time.Duration, op func(context.Context) error, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- op(ctx) }()
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, l.Vanish(lab.Server))
	ended := false
	select {
	case err := <-errc:
		ended = true
		t.Errorf("%s: the call ended within %v of the vanishing: %v", what, wait, err)
	case <-time.After(wait):
		t.Logf("%s: still waiting %v after the vanishing", what, wait)
	}
	require.NoError(t, l.Restore(lab.Server))
	cancel()
	if stop != nil {
		stop()
	}
	if ended {
		return
	}
	select {
	case <-errc:
	case <-time.After(2 * budget):
		t.Errorf("%s: the call did not end when cancelled", what)
	}
}
