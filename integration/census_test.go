//go:build linux

package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/tuning"
)

// buildGhostscan builds the command once for the test.
func buildGhostscan(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ghostscan")
	// ghostscan is a module of its own (cmd/ghostscan/go.mod).
	out, err := exec.Command("go", "build", "-C", "cmd/ghostscan", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build -C cmd/ghostscan: %s", out)
	return bin
}

// ghostscan runs the command on the server host: another process, which
// reads this one's socket options with pidfd_getfd.
func ghostscan(t *testing.T, l *lab.Lab, bin string, args ...string) (*census.Census, int, time.Time) {
	t.Helper()
	var out, errOut bytes.Buffer
	var err error
	var at time.Time
	l.InServer(func() { // the child inherits this thread's namespace
		cmd := exec.Command(bin, append([]string{"-json"}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		at = time.Now()
		err = cmd.Run()
	})
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	require.NotEqual(t, 2, code, "ghostscan failed: %s", errOut.String())
	var c census.Census
	require.NoError(t, json.Unmarshal(out.Bytes(), &c), "%s", out.String())
	return &c, code, at
}

// endTimes records when each accepted connection ended, by peer address.
type endTimes struct {
	mu  sync.Mutex
	end map[string]tuning.Event
	at  map[string]time.Time
}

func (e *endTimes) Observe(ev tuning.Event) {
	if ev.Kind != tuning.EventEnded {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.end[ev.Remote.String()], e.at[ev.Remote.String()] = ev, time.Now()
}

func (e *endTimes) get(remote string) (tuning.Event, time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev, ok := e.end[remote]
	return ev, e.at[remote], ok
}

// TestGhostscanCensus: a server holds, on a hardened listener and on a
// stock one (keepalive off, no user timeout), live idle, live busy,
// window-stalled and vanished connections. ghostscan, run as another
// process on the server host, counts each kind as the test built it, reads
// the real settings, and its "ends in" for each vanished connection
// matches the reap the server then measures.
func TestGhostscanCensus(t *testing.T) {
	t.Parallel()
	bin := buildGhostscan(t)
	c, err := tuning.ForBudget(20 * time.Second) // wide enough to scan mid-silence
	require.NoError(t, err)
	c.NoGuard = true // from outside, a guarded socket with data queued holds UT 0
	ends := &endTimes{end: map[string]tuning.Event{}, at: map[string]time.Time{}}
	c.Observer = ends
	idleW, busyW := windows(c)

	l := newLab(t)
	extra, err := l.AddClientAddrs(1)
	require.NoError(t, err)
	gone := extra[0]
	hard, err := l.Listen(c.Listen, "tcp", l.ServerAddrPort(0))
	require.NoError(t, err)
	defer hard.Close()
	stock, err := l.Listen((&net.ListenConfig{KeepAlive: -1}).Listen, "tcp", l.ServerAddrPort(0))
	require.NoError(t, err)
	defer stock.Close()

	pair := func(ln net.Listener, from netip.Addr) (client, server net.Conn) {
		d := net.Dialer{KeepAlive: -1, LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
		client, err := d.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		server, err = ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { client.Close(); server.Close() })
		// One byte each way: both have just heard from each other.
		_, err = server.Write([]byte{1})
		require.NoError(t, err)
		_, err = client.Read(make([]byte, 1))
		require.NoError(t, err)
		return client, server
	}
	live := l.ClientAddr
	var vanishedIdle, vanishedBusy []net.Conn // server ends on the hardened listener
	for _, ln := range []net.Listener{hard, stock} {
		pair(ln, live)
		pair(ln, live) // live, idle
		_, s := pair(ln, gone)
		_, s2 := pair(ln, gone) // vanishing, idle
		if ln == hard {
			readErr(s) // a server reads: the reap reaches it as an error
			readErr(s2)
			vanishedIdle = append(vanishedIdle, s, s2)
			cl, sv := pair(ln, live) // live, busy: a steady writer, a reader
			readErr(cl)
			writeLoop(sv, 1<<10, 10*time.Millisecond)
			cl, sv = pair(ln, gone) // vanishing, busy
			readErr(cl)
			writeLoop(sv, 1<<10, 10*time.Millisecond)
			vanishedBusy = append(vanishedBusy, sv)
		}
		_, sv := pair(ln, live) // live, never reads: its window shuts
		writeErr(sv)
	}
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, l.VanishClientAddr(gone))
	vanished := time.Now()
	// Past KeepAlive.Idle and one Interval (8 s and 3 s): two probes have
	// gone unanswered, the least a suspected verdict takes.
	silence := c.KeepAlive.Idle + c.KeepAlive.Interval*3/2
	time.Sleep(silence)

	got, code, scanned := ghostscan(t, l, bin)
	var table bytes.Buffer
	var terr error
	l.InServer(func() {
		cmd := exec.Command(bin, "-conns")
		cmd.Stdout, cmd.Stderr = &table, &table
		terr = cmd.Run()
	})
	var exit *exec.ExitError
	require.ErrorAs(t, terr, &exit, "%s", table.String())
	assert.Equal(t, 1, exit.ExitCode())
	t.Logf("ghostscan -conns:\n%s", table.String())
	t.Logf("ghostscan: %d sockets, %d connections, in %v, exit %d", got.Sockets, len(got.Connections), got.Took, code)
	assert.Equal(t, 1, code, "stock connections the kernel never ends: exit 1")
	groups := map[string]*census.Group{}
	for _, g := range got.Groups {
		groups[g.Name] = g
		t.Logf("%+v", *g)
	}
	h, s := groups["listen "+hard.Addr().String()], groups["listen "+stock.Addr().String()]
	require.NotNil(t, h)
	require.NotNil(t, s)
	for _, tc := range []struct {
		name      string
		got, want census.Group
	}{
		// A LAN: no connection on a slow path, the retransmitting one
		// (its RTO backed off) included.
		{"hardened", *h, census.Group{Established: 7, Unwatched: 0, Retransmitting: 1, Stalled: 1, Suspected: 3, NeverEnds: 0, SettingsRead: 7, SlowPath: 0}},
		{"stock", *s, census.Group{Established: 5, Unwatched: 4, Retransmitting: 0, Stalled: 1, Suspected: 0, NeverEnds: 4, SettingsRead: 5, SlowPath: 0}},
	} {
		g := tc.got
		assert.Equal(t, tc.want, census.Group{Established: g.Established, Unwatched: g.Unwatched, Retransmitting: g.Retransmitting,
			Stalled: g.Stalled, Suspected: g.Suspected, NeverEnds: g.NeverEnds, SettingsRead: g.SettingsRead, SlowPath: g.SlowPath}, tc.name)
	}
	assert.GreaterOrEqual(t, time.Duration(h.SilentFor), silence-lab.Early, "the retransmitting one has been silent since the vanishing")

	// "Ends in", against the reaps the server then measures: no later
	// than it says (plus the lab's lateness), and no earlier than it
	// less the spread between the kernel's earliest and worst case.
	byPeer := map[string]*census.Conn{}
	for _, conn := range got.Connections {
		byPeer[conn.Remote.String()] = conn
	}
	check := func(server net.Conn, w window, cause tuning.Cause) {
		peer := server.RemoteAddr().String()
		conn := byPeer[peer]
		require.NotNil(t, conn, peer)
		assert.Equal(t, tuning.Suspected, conn.Verdict, peer)
		assert.Equal(t, c.UserTimeout, conn.Snapshot.Options.UserTimeout, "settings read from the test process")
		var at time.Time
		require.Eventually(t, func() bool { _, at, _ = ends.get(peer); return !at.IsZero() }, 2*w.bound, 50*time.Millisecond, "%s not reaped", peer)
		ev, _, _ := ends.get(peer)
		assert.Equal(t, cause, ev.Cause, peer)
		left := at.Sub(scanned)
		t.Logf("%s (%v): ghostscan said ends in %v; ended %v after the scan (%v after the vanishing)", peer, cause,
			conn.EndsIn, left.Round(time.Millisecond), at.Sub(vanished).Round(time.Millisecond))
		assert.LessOrEqual(t, left, time.Duration(conn.EndsIn)+lab.Late, "%s: later than ghostscan said", peer)
		assert.GreaterOrEqual(t, left, time.Duration(conn.EndsIn)-(w.bound-w.earliest)-lab.Early, "%s: far earlier than ghostscan said", peer)
	}
	for _, sv := range vanishedIdle {
		check(sv, idleW, tuning.CauseReapedIdle)
	}
	for _, sv := range vanishedBusy {
		check(sv, busyW, tuning.CauseReapedBusy)
	}
}

// TestGhostscanSlowPath: a connection over the lab's phone-grade link (a
// 200 ms round trip) is counted SLOW, with its own RTO marked in the
// table.
func TestGhostscanSlowPath(t *testing.T) {
	t.Parallel()
	bin := buildGhostscan(t)
	c := kit(t)
	l := newPathLab(t, lab.Phone(200*time.Millisecond))
	conn := echoPair(t, l, defaultDial(c))
	for range 5 {
		require.NoError(t, roundTrip(conn, make([]byte, 1<<10), 5*time.Second))
	}
	got, _, _ := ghostscan(t, l, bin, "-peer", l.ClientAddr.String())
	require.Len(t, got.Connections, 1, "the server's end of the one connection")
	sc := got.Connections[0]
	t.Logf("RTT %v, RTO %v (base %v), ends in %v", sc.Snapshot.RTT, sc.Snapshot.RTO, sc.Snapshot.BaseRTO(), sc.EndsIn)
	assert.True(t, sc.SlowPath, "RTO %v past LANRTOMax %v", sc.Snapshot.BaseRTO(), tuning.LANRTOMax)
	slow := 0
	for _, g := range got.Groups {
		slow += g.SlowPath
	}
	assert.Equal(t, 1, slow, "the groups count it")

	var table bytes.Buffer
	l.InServer(func() {
		cmd := exec.Command(bin, "-conns", "-peer", l.ClientAddr.String())
		cmd.Stdout, cmd.Stderr = &table, &table
		cmd.Run() // exit 1: the stock echo server's end has no user timeout
	})
	t.Logf("ghostscan -conns:\n%s", table.String())
	assert.Contains(t, table.String(), " slow", "the table marks its RTO")
}
