package clients

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/internal/procsock"
	"github.com/ghostsock/ghostsock/internal/reclaim"
	"github.com/ghostsock/ghostsock/tuning"
)

// reapSilent is the -silent the reap tests give: short, for the test's
// sake (the default is reclaim.DefaultSilent).
const reapSilent = 3 * time.Second

// remote is the address a connection's server side sees as its peer.
func remote(c interface{ LocalAddr() net.Addr }) netip.AddrPort {
	return c.LocalAddr().(*net.TCPAddr).AddrPort()
}

// reapUntil runs the dry run until it lists want, and returns its list.
func reapUntil(t *testing.T, l *lab.Lab, bin string, port int, want netip.AddrPort) []*reclaim.Reaped {
	t.Helper()
	deadline := time.Now().Add(reapSilent + 30*time.Second)
	for {
		r := ghostscanAs(t, l, bin, nil, "-reap", "-silent", reapSilent.String(), "-json", "-port", strconv.Itoa(port))
		var rs []*reclaim.Reaped
		r.decode(t, &rs)
		for _, x := range rs {
			if x.Conn.Remote == want {
				assert.Equal(t, 1, r.code, "a dry run that finds a ghost exits 1")
				return rs
			}
		}
		require.True(t, time.Now().Before(deadline), "the dry run never listed %v", want)
		time.Sleep(time.Second)
	}
}

// TestGhostscanReap: against a Python asyncio echo server, some of whose
// clients vanish. A dry run lists the one sending into silence and
// changes nothing; a normal user is refused; -reap -yes ends it and no
// other: the idle ghost (no keepalive: it cannot be told from a quiet live
// peer), a live streaming client and a live idle one go on, every byte
// checked; the server sees the error and frees the socket.
func TestGhostscanReap(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	bin := ghostscanBin(t)
	srv := startEcho(t, l)
	addrs, err := l.AddClientAddrs(3)
	require.NoError(t, err)
	ghostBusy := dialFrom(t, l, addrs[0], echoPort)
	ghostIdle := dialFrom(t, l, addrs[1], echoPort)
	liveBusy := dialFrom(t, l, addrs[2], echoPort)
	liveIdle := dialFrom(t, l, netip.Addr{}, echoPort)
	for _, c := range []net.Conn{ghostIdle, liveIdle} {
		require.NoError(t, ping(c))
	}
	stream(ghostBusy, 2*time.Millisecond)
	live := stream(liveBusy, 10*time.Millisecond)
	time.Sleep(time.Second)
	held := sockets(t, srv.cmd.Process.Pid)

	require.NoError(t, l.VanishClientAddr(addrs[0]))
	require.NoError(t, l.VanishClientAddr(addrs[1]))
	rs := reapUntil(t, l, bin, echoPort, remote(ghostBusy))
	require.Len(t, rs, 1, "the one connection sending into silence, and no other")
	assert.NotNil(t, view(scan(t, l, echoPort)).connFrom(remote(ghostBusy)), "the dry run ended nothing")

	// The cookie is what keeps a destroy on the socket judged: a live
	// connection's addresses with any other cookie end nothing.
	lb := view(scan(t, l, echoPort)).connFrom(remote(liveBusy))
	require.NotNil(t, lb)
	l.InServer(func() { err = reclaim.Destroy(lb.Local, lb.Remote, lb.Cookie^1, lb.Interface) })
	assert.ErrorIs(t, err, reclaim.ErrGone, "another cookie finds no socket")
	assert.NotNil(t, view(scan(t, l, echoPort)).connFrom(remote(liveBusy)), "and the live connection is untouched")

	r := ghostscanAs(t, l, bin, nobody, "-reap", "-silent", reapSilent.String(), "-yes", "-port", strconv.Itoa(echoPort))
	assert.Equal(t, 2, r.code, "a normal user may not end sockets")
	assert.Contains(t, r.stderr, "CAP_NET_ADMIN", "and is told what it takes")
	assert.NotNil(t, view(scan(t, l, echoPort)).connFrom(remote(ghostBusy)), "the refusal ended nothing")

	r = ghostscanAs(t, l, bin, nil, "-reap", "-silent", reapSilent.String(), "-yes", "-json", "-port", strconv.Itoa(echoPort))
	var done []*reclaim.Reaped
	r.decode(t, &done)
	assert.Equal(t, 0, r.code, "every ghost found was ended")
	require.Len(t, done, 1)
	assert.Equal(t, remote(ghostBusy), done[0].Conn.Remote)
	assert.Equal(t, reclaim.Ended, done[0].Outcome)

	after := view(scan(t, l, echoPort))
	assert.Nil(t, after.connFrom(remote(ghostBusy)), "the ghost is gone")
	idle := after.connFrom(remote(ghostIdle))
	if assert.NotNil(t, idle, "the idle ghost is left: nothing probes it") {
		assert.Equal(t, tuning.Unwatched, idle.Verdict)
	}
	deadline := time.Now().Add(5 * time.Second)
	for sockets(t, srv.cmd.Process.Pid) != held-1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	assert.Equal(t, held-1, sockets(t, srv.cmd.Process.Pid), "the server saw the error and closed its socket")
	live.finish(t, "the live streaming client")
	assert.NoError(t, ping(liveIdle), "the live idle client")
}

// TestGhostscanReapByUserTimeout: the reap a kernel without SOCK_DESTROY
// gets, forced on. The ghost of a stock server's connection sending into
// silence is given, through the server's own socket, a user timeout its
// silence exceeds, and its kernel ends it at its next retransmission; the
// server sees the error and frees the socket; a live streaming client and
// a live idle one go on, every byte checked.
func TestGhostscanReapByUserTimeout(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	bin := ghostscanBin(t)
	srv := startEcho(t, l)
	addrs, err := l.AddClientAddrs(2)
	require.NoError(t, err)
	ghost := dialFrom(t, l, addrs[0], echoPort)
	liveBusy := dialFrom(t, l, addrs[1], echoPort)
	liveIdle := dialFrom(t, l, netip.Addr{}, echoPort)
	require.NoError(t, ping(liveIdle))
	stream(ghost, 2*time.Millisecond)
	live := stream(liveBusy, 10*time.Millisecond)
	time.Sleep(time.Second)
	held := sockets(t, srv.cmd.Process.Pid)

	require.NoError(t, l.VanishClientAddr(addrs[0]))
	reapUntil(t, l, bin, echoPort, remote(ghost))
	r := ghostscanAs(t, l, bin, nobody, "-reap", "-reap-by", "user-timeout", "-silent", reapSilent.String(), "-yes",
		"-port", strconv.Itoa(echoPort))
	assert.Equal(t, 2, r.code, "a normal user may not reach the server's sockets: %s", r.stderr)
	assert.Contains(t, r.stderr, "CAP_SYS_PTRACE", "and is told what it takes")
	r = ghostscanAs(t, l, bin, nil, "-reap", "-reap-by", "user-timeout", "-silent", reapSilent.String(), "-yes", "-json",
		"-port", strconv.Itoa(echoPort))
	var done []*reclaim.Reaped
	r.decode(t, &done)
	assert.Equal(t, 0, r.code, "every ghost found is ending: %s", r.stderr)
	require.Len(t, done, 1, "the one connection sending into silence, and no other")
	assert.Equal(t, remote(ghost), done[0].Conn.Remote)
	assert.Equal(t, reclaim.Ending, done[0].Outcome, done[0].Err)
	assert.Equal(t, reclaim.ByUserTimeout, done[0].By)

	// Its next retransmission comes within its RTO, backed off as it is,
	// as the kernel held it at the reap, and a timer's slack.
	rto := done[0].Conn.Snapshot.RTO
	within := rto + rto/8 + time.Second
	assert.Eventually(t, func() bool { return view(scan(t, l, echoPort)).connFrom(remote(ghost)) == nil },
		within, 100*time.Millisecond, "the ghost ended within its RTO (%v) of the reap", rto)
	assert.Eventually(t, func() bool { return sockets(t, srv.cmd.Process.Pid) == held-1 },
		5*time.Second, 50*time.Millisecond, "the server saw the error and closed its socket")
	live.finish(t, "the live streaming client")
	assert.NoError(t, ping(liveIdle), "the live idle client")
}

// options reads the options of every socket the census picks by port,
// keyed by peer ("listen" for the listening sockets).
func options(t *testing.T, l *lab.Lab, port int) map[string]tuning.Config {
	t.Helper()
	c := scan(t, l, port)
	m := map[string]tuning.Config{}
	for _, ln := range c.Listeners {
		require.True(t, ln.OptionsKnown, "the listener's options read")
		m["listen "+ln.Addr.String()] = ln.Options
	}
	for _, conn := range c.Connections {
		require.True(t, conn.Snapshot.OptionsKnown, "%v's options read", conn.Remote)
		m[conn.Remote.String()] = conn.Snapshot.Options
	}
	return m
}

// untilStalled waits until the server's connection from a is window-stalled.
func untilStalled(t *testing.T, l *lab.Lab, port int, a netip.AddrPort) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c := view(scan(t, l, port)).connFrom(a); c != nil && c.Verdict == tuning.WindowStalled {
			return
		}
		require.True(t, time.Now().Before(deadline), "the server's connection from %v never stalled", a)
	}
}

// TestGhostscanHarden: on a running Python asyncio echo server, which sets
// no keepalive or user timeout of its own. The dry run warns of a live
// reader that keeps its window shut and changes nothing; a normal user is
// refused; -keepalive-only leaves that reader alone past the user timeout;
// -undo puts every option back; -harden 10s then cuts the stalled reader
// (the warning, shown), and the connections that vanish afterwards, one
// open before and one accepted after, are ended by the kernel within
// ForBudget(10s)'s idle bound, while a live idle client survives; a last
// -undo puts back the listener's options and those of the connection
// accepted since.
func TestGhostscanHarden(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	bin := ghostscanBin(t)
	startEcho(t, l)
	cfg, idleBound := hardenBudget(t)
	addrs, err := l.AddClientAddrs(4)
	require.NoError(t, err)
	port := strconv.Itoa(echoPort)
	record := filepath.Join(t.TempDir(), "harden.json")

	ghostBefore := dialFrom(t, l, addrs[0], echoPort)
	liveIdle := dialFrom(t, l, netip.Addr{}, echoPort)
	require.NoError(t, ping(ghostBefore))
	require.NoError(t, ping(liveIdle))
	reader := dialFrom(t, l, addrs[1], echoPort) // sends, never reads: the server's echo stalls on its window
	go reader.Write(make([]byte, 16<<20))
	untilStalled(t, l, echoPort, remote(reader))
	before := options(t, l, echoPort)

	r := ghostscanAs(t, l, bin, nil, "-harden", "10s", "-record", record, "-port", port)
	assert.Equal(t, 1, r.code, "a dry run with sockets to change exits 1")
	assert.Contains(t, r.stdout, "warning: 1 connection window-stalled now")
	assert.Equal(t, before, options(t, l, echoPort), "the dry run changed nothing")
	assert.NoFileExists(t, record)

	r = ghostscanAs(t, l, bin, nobody, "-harden", "10s", "-yes", "-record", record, "-port", port)
	assert.Equal(t, 2, r.code, "a normal user cannot read the server's sockets")
	assert.Contains(t, r.stderr, "run as root")
	assert.Equal(t, before, options(t, l, echoPort), "the refusal changed nothing")
	for _, args := range [][]string{{"-harden", "10s", "-yes"}, {"-harden", "10s", "-yes", "-pid", strconv.Itoa(exitedPID(t))}, {"-harden", "1ms", "-yes", "-port", port}} {
		r := ghostscanAs(t, l, bin, nil, append(args, "-record", record)...)
		assert.Equal(t, 2, r.code, "%v refused", args)
		assert.NotEmpty(t, r.stderr, "%v says why", args)
	}
	assert.Equal(t, before, options(t, l, echoPort), "the refusals changed nothing")

	r = ghostscanAs(t, l, bin, nil, "-harden", "10s", "-keepalive-only", "-yes", "-record", record, "-port", port)
	assert.Equal(t, 0, r.code)
	for peer, o := range options(t, l, echoPort) {
		assert.Equal(t, before[peer].UserTimeout, o.UserTimeout, "%s: -keepalive-only keeps the user timeout", peer)
		assert.Equal(t, cfg.KeepAlive, o.KeepAlive, "%s: keepalive as ForBudget(10s) has it", peer)
	}
	time.Sleep(cfg.UserTimeout + lab.Late)
	if c := view(scan(t, l, echoPort)).connFrom(remote(reader)); assert.NotNil(t, c, "-keepalive-only leaves the stalled live reader alone") {
		assert.Equal(t, tuning.WindowStalled, c.Verdict)
	}

	r = ghostscanAs(t, l, bin, nil, "-undo", "-yes", "-record", record)
	assert.Equal(t, 0, r.code)
	assert.Equal(t, before, options(t, l, echoPort), "-undo put back every option")
	assert.NoFileExists(t, record, "nothing left to undo")

	// The kernel counts the user timeout of a zero-window stall from its
	// first probe, long past: it cuts the reader at its next probe, due
	// within the probes' backoff (tcp_probe0_when).
	stalled := view(scan(t, l, echoPort)).connFrom(remote(reader))
	require.NotNil(t, stalled)
	nextProbe := min(max(stalled.Snapshot.RTO, 200*time.Millisecond)<<stalled.Snapshot.Backoff, 120*time.Second)
	r = ghostscanAs(t, l, bin, nil, "-harden", "10s", "-yes", "-record", record, "-port", port)
	assert.Equal(t, 0, r.code)
	cut := goneWithin(t, l, echoPort, remote(reader), nextProbe+lab.Late)
	t.Logf("the stalled live reader was cut %v after -harden 10s (user timeout %v, its next window probe due within %v): the warning's case",
		cut.Round(time.Millisecond), cfg.UserTimeout, nextProbe)
	ghostAfter := dialFrom(t, l, addrs[2], echoPort)
	liveAfter := dialFrom(t, l, addrs[3], echoPort)
	require.NoError(t, ping(ghostAfter))
	require.NoError(t, ping(liveAfter))
	now := options(t, l, echoPort)
	for _, peer := range []net.Conn{ghostBefore, ghostAfter, liveIdle} {
		o := now[remote(peer).String()]
		assert.Equal(t, cfg.UserTimeout, o.UserTimeout, "%v: the user timeout, set or inherited", remote(peer))
		assert.Equal(t, cfg.KeepAlive, o.KeepAlive, "%v: the keepalive, set or inherited", remote(peer))
	}

	require.NoError(t, l.VanishClientAddr(addrs[0]))
	require.NoError(t, l.VanishClientAddr(addrs[2]))
	vanished := time.Now()
	for _, ghost := range []net.Conn{ghostBefore, ghostAfter} {
		goneWithin(t, l, echoPort, remote(ghost), idleBound+lab.Late-time.Since(vanished))
		t.Logf("%v ended by the server's kernel %v after the vanishing (idle bound %v)", remote(ghost), time.Since(vanished).Round(time.Millisecond), idleBound)
	}
	time.Sleep(max(0, idleBound+lab.Late-time.Since(vanished)))
	assert.NoError(t, ping(liveIdle), "the live idle client, open before, survives")
	assert.NoError(t, ping(liveAfter), "the live idle client, accepted after, survives")

	hardened := options(t, l, echoPort)
	r = ghostscanAs(t, l, bin, nil, "-undo", "-record", record)
	assert.Equal(t, 1, r.code, "a dry run with sockets to put back exits 1")
	assert.Equal(t, hardened, options(t, l, echoPort), "the dry run changed nothing")
	r = ghostscanAs(t, l, bin, nil, "-undo", "-yes", "-record", record)
	assert.Equal(t, 0, r.code)
	back := options(t, l, echoPort)
	for peer, o := range back {
		want, ok := before[peer]
		if !ok {
			// Accepted since: the listener's own, keepalive left on (the
			// server might have turned it on itself).
			want = before["listen "+l.ServerAddrPort(echoPort)]
			want.KeepAlive.Enable = true
		}
		assert.Equal(t, want, o, "%s: put back", peer)
	}
}

// hardenBudget is the Config of -harden 10s, ForBudget(10s), and its idle
// bound.
func hardenBudget(t *testing.T) (tuning.Config, time.Duration) {
	t.Helper()
	cfg, err := tuning.ForBudget(10 * time.Second)
	require.NoError(t, err)
	idle, _ := cfg.Bounds()
	return cfg, idle
}

// exitedPID is the id of a process that has ended.
func exitedPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

// pgConnFrom connects to the lab's PostgreSQL from client address a
// (invalid: the client's own), with a stock dialer.
func pgConnFrom(t *testing.T, l *lab.Lab, a netip.Addr) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgDSN(l))
	require.NoError(t, err)
	d := &net.Dialer{KeepAlive: -1, Timeout: 5 * time.Second}
	if a.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: a.AsSlice()}
	}
	cfg.DialFunc = d.DialContext
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(ctx)
	})
	return conn
}

// pgRemote is the address PostgreSQL sees for conn.
func pgRemote(conn *pgx.Conn) netip.AddrPort { return remote(conn.PgConn().Conn()) }

// exec runs a statement and fails the test on its error.
func pgExec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	_, err := conn.Exec(t.Context(), sql)
	require.NoError(t, err, "%s", sql)
}

// blocked starts sql on conn and returns its error once done; it fails
// the test if it finished at once (it must wait for a lock).
func blocked(t *testing.T, conn *pgx.Conn, sql string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := conn.Exec(ctx, sql)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("%s did not wait for the lock: %v", sql, err)
	case <-time.After(500 * time.Millisecond):
	}
	return done
}

// backendGone checks that the statement the ghost's lock blocked
// completes, and that the ghost's backend process has gone.
func backendGone(t *testing.T, live *pgx.Conn, done <-chan error, pids ...int) {
	t.Helper()
	select {
	case err := <-done:
		require.NoError(t, err, "the blocked statement completes")
	case <-time.After(30 * time.Second):
		t.Fatal("the blocked statement was still waiting 30 s after the ghost ended")
	}
	for _, pid := range pids {
		// The backend releases its locks as it aborts, and leaves
		// pg_stat_activity as it exits, a moment later.
		assert.Eventually(t, func() bool {
			var n int
			return live.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n) == nil && n == 0
		}, 10*time.Second, 50*time.Millisecond, "backend %d is gone from pg_stat_activity", pid)
		assert.Eventually(t, func() bool { return procsock.Exited(pid) }, 10*time.Second, 50*time.Millisecond, "backend process %d has exited", pid)
	}
}

// TestGhostscanReapPostgres: a client holding a table lock vanishes while
// its backend streams a result to it. -reap -yes ends that backend's
// connection, and no other: PostgreSQL sees the error, the backend exits,
// the lock goes and the TRUNCATE it blocked completes.
func TestGhostscanReapPostgres(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	bin := ghostscanBin(t)
	startPostgres(t, l)
	addrs, err := l.AddClientAddrs(1)
	require.NoError(t, err)
	live := pgConnFrom(t, l, netip.Addr{})
	ghost := pgConnFrom(t, l, addrs[0])
	pgExec(t, live, "CREATE TABLE t (x int)")
	pgExec(t, ghost, "BEGIN")
	pgExec(t, ghost, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
	go ghost.Exec(context.Background(), "SELECT repeat('x', 1000) FROM generate_series(1, 10000000)")
	time.Sleep(500 * time.Millisecond) // streaming
	require.NoError(t, l.VanishClientAddr(addrs[0]))
	done := blocked(t, live, "TRUNCATE t")

	rs := reapUntil(t, l, bin, 5432, pgRemote(ghost))
	require.Len(t, rs, 1, "the ghost's backend, and no other")
	backend := rs[0].Conn.PID
	r := ghostscanAs(t, l, bin, nil, "-reap", "-silent", reapSilent.String(), "-port", "5432")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stdout, pgRemote(ghost).String(), "the table names the ghost")
	r = ghostscanAs(t, l, bin, nil, "-reap", "-silent", reapSilent.String(), "-yes", "-port", "5432")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "ended")
	assert.Nil(t, view(scan(t, l, 5432)).connFrom(pgRemote(ghost)), "the ghost's connection is gone")
	backendGone(t, live, done, backend)
	pgExec(t, live, "SELECT 1")
}

// TestGhostscanHardenPostgres: PostgreSQL's backends keep keepalive's
// two hours (tcp_keepalives_idle 0 takes the socket's own). After
// -harden 10s on its port, a client open before, idle in a transaction
// that holds a lock, and one accepted after (which inherits the
// listener's options: PostgreSQL sets only SO_KEEPALIVE), both vanish;
// the kernel ends their backends' connections within ForBudget(10s)'s idle
// bound, the locks go and the TRUNCATE they blocked completes. -undo puts
// the listener's options back.
func TestGhostscanHardenPostgres(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	bin := ghostscanBin(t)
	startPostgres(t, l)
	cfg, idleBound := hardenBudget(t)
	addrs, err := l.AddClientAddrs(2)
	require.NoError(t, err)
	record := filepath.Join(t.TempDir(), "harden.json")
	live := pgConnFrom(t, l, netip.Addr{})
	pgExec(t, live, "CREATE TABLE t (x int)")
	pgExec(t, live, "CREATE TABLE u (x int)")
	before := pgConnFrom(t, l, addrs[0])
	pgExec(t, before, "BEGIN")
	pgExec(t, before, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
	opts := options(t, l, 5432)
	listenBefore := opts["listen "+l.ServerAddrPort(5432)]
	backendBefore := opts[pgRemote(live).String()] // what PostgreSQL gives a backend by itself

	r := ghostscanAs(t, l, bin, nil, "-harden", "10s", "-yes", "-record", record, "-port", "5432")
	require.Equal(t, 0, r.code)
	after := pgConnFrom(t, l, addrs[1])
	liveAfter := pgConnFrom(t, l, netip.Addr{})
	pgExec(t, after, "BEGIN")
	pgExec(t, after, "LOCK TABLE u IN ACCESS EXCLUSIVE MODE")
	c := view(scan(t, l, 5432))
	var pids []int
	for _, ghost := range []*pgx.Conn{before, after} {
		conn := c.connFrom(pgRemote(ghost))
		require.NotNil(t, conn)
		pids = append(pids, conn.PID)
		assert.Equal(t, cfg.UserTimeout, conn.Snapshot.Options.UserTimeout, "%v: the user timeout, set or inherited", conn.Remote)
		assert.Equal(t, cfg.KeepAlive, conn.Snapshot.Options.KeepAlive, "%v: the keepalive, set or inherited", conn.Remote)
	}

	require.NoError(t, l.VanishClientAddr(addrs[0]))
	require.NoError(t, l.VanishClientAddr(addrs[1]))
	vanished := time.Now()
	done := blocked(t, live, "TRUNCATE t, u")
	for _, ghost := range []*pgx.Conn{before, after} {
		goneWithin(t, l, 5432, pgRemote(ghost), idleBound+lab.Late-time.Since(vanished))
		t.Logf("the backend of %v ended by the kernel %v after the vanishing (idle bound %v)", pgRemote(ghost), time.Since(vanished).Round(time.Millisecond), idleBound)
	}
	backendGone(t, live, done, pids...)

	r = ghostscanAs(t, l, bin, nil, "-undo", "-yes", "-record", record)
	assert.Equal(t, 0, r.code)
	back := options(t, l, 5432)
	assert.Equal(t, listenBefore, back["listen "+l.ServerAddrPort(5432)], "the listener's options put back")
	assert.Equal(t, backendBefore, back[pgRemote(live).String()], "the backend open before, put back")
	assert.Equal(t, backendBefore, back[pgRemote(liveAfter).String()], "the backend accepted since (a child of the listener's process), put back")
	pgExec(t, liveAfter, "SELECT 1")
}

// metrics scrapes url with curl and returns the value of every sample of
// ghostscan_connections, keyed by its group and state.
func metrics(t *testing.T, url string) (map[[2]string]float64, string, error) {
	t.Helper()
	curl := requireTool(t, "/usr/bin/curl", "curl")
	out, err := exec.Command(curl, "-sf", "--max-time", "5", url).Output()
	if err != nil {
		return nil, "", err
	}
	m := map[[2]string]float64{}
	for line := range strings.Lines(string(out)) {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || name != "ghostscan_connections" {
			continue
		}
		labels, value, _ := strings.Cut(rest, "} ")
		var group, state string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "group":
				group = v
			case "state":
				state = v
			}
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		require.NoError(t, err, "%s", line)
		m[[2]string{group, state}] = f
	}
	return m, string(out), nil
}

// TestGhostscanWatch: ghostscan -watch serves the census as Prometheus
// metrics; scraped with curl, its counts match a census taken beside it
// (three idle connections to a server with keepalive off: established,
// unwatched and never ending).
func TestGhostscanWatch(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	bin := ghostscanBin(t)
	startEcho(t, l)
	for range 3 {
		require.NoError(t, ping(dialFrom(t, l, netip.Addr{}, echoPort)))
	}
	addr := l.ServerAddrPort(9464)
	url := "http://" + addr + "/metrics"
	cmd := exec.Command(bin, "-watch", "200ms", "-listen", addr, "-port", strconv.Itoa(echoPort))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	l.InServer(func() { require.NoError(t, cmd.Start()) })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	var c census.Census
	ghostscanAs(t, l, bin, nil, "-json", "-port", strconv.Itoa(echoPort)).decode(t, &c)
	require.Len(t, c.Groups, 1)
	g := c.Groups[0]
	want := map[string]int{"established": g.Established, "close_wait": g.CloseWait, "unwatched": g.Unwatched, "retransmitting": g.Retransmitting,
		"stalled": g.Stalled, "suspected": g.Suspected, "never_ending": g.NeverEnds, "slow_path": g.SlowPath}
	assert.Equal(t, 3, g.Established)
	assert.Equal(t, 3, g.Unwatched)
	var got map[[2]string]float64
	var text string
	require.Eventually(t, func() bool {
		var err error
		got, text, err = metrics(t, url)
		return err == nil && got[[2]string{g.Name, "established"}] == float64(g.Established)
	}, 10*time.Second, 100*time.Millisecond, "the endpoint serves the census: %s", &out)
	t.Logf("scraped:\n%s", text)
	for state, n := range want {
		v, ok := got[[2]string{g.Name, state}]
		assert.True(t, ok, "%s: %s is served", g.Name, state)
		assert.Equal(t, float64(n), v, "%s: %s", g.Name, state)
	}
	assert.Contains(t, text, fmt.Sprintf("ghostscan_ends_in_longest_seconds{group=%q", g.Name))
	assert.Contains(t, text, "ghostscan_scan_duration_seconds")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		assert.NoError(t, err, "it exits 0 on SIGTERM: %s", out.String())
		exited <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Errorf("it did not end within 10 s of SIGTERM: %s", out.String())
	}
}
