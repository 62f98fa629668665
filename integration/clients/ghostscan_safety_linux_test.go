package clients

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/internal/procsock"
	"github.com/ghostsock/ghostsock/internal/reclaim"
	"github.com/ghostsock/ghostsock/tuning"
)

// slowPath is the path of the reap's safety test: a round trip of
// 500 ms, the time a request or a probe to a live peer stays unanswered.
var slowPath = lab.Path{Up: lab.Shape{Delay: 250 * time.Millisecond}, Down: lab.Shape{Delay: 250 * time.Millisecond}}

// clientCensus is a census of this (the client) host's connections to
// peer, reading their options.
func clientCensus(t *testing.T, peer netip.Addr) *census.Census {
	t.Helper()
	c, err := census.Scan(census.Options{Filter: census.Filter{Peer: netip.PrefixFrom(peer, peer.BitLen())}, Settings: true})
	require.NoError(t, err)
	return c
}

// heardLongAgo counts the connections of c with data in flight and
// nothing heard from the peer for reapSilent: those a verdict counting
// from the last segment received ended, live or not.
func heardLongAgo(c *census.Census) int {
	n := 0
	for _, conn := range c.Connections {
		if s := conn.Snapshot; s.Busy() && s.Silence() >= reapSilent {
			n++
		}
	}
	return n
}

// probing is the connection of c from local with a keepalive probe out,
// or nil.
func probing(c *census.Census, local netip.AddrPort) *census.Conn {
	for _, conn := range c.Connections {
		if conn.Local == local && conn.Snapshot.Probes > 0 {
			return conn
		}
	}
	return nil
}

// TestGhostscanReapLeavesLivePeers: over a path with a 500 ms round trip,
// ghostscan -reap -yes run on the client host at the instant live
// connections idle past -silent have a request on the wire, or their
// first keepalive probe, ends none of them; the census taken after each
// run shows they were still unanswered, so both of its looks saw them so.
// The probes' keepalive idle is 20 s: its timer lands in the timer
// wheel's 2 s buckets, so a probe may leave up to 2 s late, past Idle
// plus the RTO, the case the old verdict (a probe out, silence past Idle
// and the RTO) took for a dead peer. A connection whose peer then
// vanishes is still ended.
func TestGhostscanReapLeavesLivePeers(t *testing.T) {
	t.Parallel()
	l := newPathLab(t, slowPath)
	bin := ghostscanBin(t)
	startEcho(t, l)
	server := l.ServerAddr.String()
	const quietConns, probedConns, rounds = 4, 6, 4
	ka := net.KeepAliveConfig{Enable: true, Idle: 20 * time.Second, Interval: 3 * time.Second, Count: 9}
	var quiet, probed []net.Conn
	for range quietConns {
		c := dialFrom(t, l, netip.Addr{}, echoPort)
		require.NoError(t, ping(c))
		quiet = append(quiet, c)
	}
	for range probedConns { // pinged 400 ms apart: their probes fall in different buckets
		c, err := (&net.Dialer{KeepAliveConfig: ka, Timeout: 5 * time.Second}).Dial("tcp", l.ServerAddrPort(echoPort))
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		require.NoError(t, ping(c))
		probed = append(probed, c)
		time.Sleep(400 * time.Millisecond)
	}
	reap := func(what string) []*reclaim.Reaped {
		t.Helper()
		r := ghostscanIn(t, onClient, bin, nil, "-reap", "-silent", reapSilent.String(), "-yes", "-json", "-peer", server)
		var rs []*reclaim.Reaped
		r.decode(t, &rs)
		assert.Equal(t, 0, r.code, "%s: nothing left to end", what)
		return rs
	}

	requests := 0 // requests ghostscan's two looks both saw unanswered
	for round := range rounds {
		time.Sleep(reapSilent + 500*time.Millisecond)
		for _, c := range quiet {
			_, err := c.Write([]byte("ping\n"))
			require.NoError(t, err)
		}
		assert.Empty(t, reap("requests"), "round %d: no connection with a request on the wire is dead", round)
		requests += heardLongAgo(clientCensus(t, l.ServerAddr))
		for i, c := range quiet {
			require.NoError(t, readPing(c), "round %d: connection %d answered", round, i)
		}
	}

	// Each probed connection's first probe, caught on the wire.
	probes, late := 0, 0 // both looks saw it unanswered; and past Idle + RTO
	seen := map[netip.AddrPort]bool{}
	deadline := time.Now().Add(ka.Idle + 10*time.Second)
	for len(seen) < len(probed) && time.Now().Before(deadline) {
		before := clientCensus(t, l.ServerAddr)
		var out []netip.AddrPort
		for _, c := range probed {
			if a := remote(c); !seen[a] && probing(before, a) != nil {
				out = append(out, a)
			}
		}
		if len(out) == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		assert.Empty(t, reap("probes"), "no connection with a probe on the wire is dead")
		after := clientCensus(t, l.ServerAddr)
		for _, a := range out {
			seen[a] = true
			if conn := probing(after, a); conn != nil {
				probes++
				if s := conn.Snapshot; s.Silence() > s.Options.KeepAlive.Idle+s.RTO {
					late++
				}
			}
		}
	}
	for i, c := range append(quiet, probed...) {
		require.NoError(t, ping(c), "connection %d: alive", i)
	}
	t.Logf("%d requests and %d keepalive probes (%d of them past Idle + RTO, the old verdict's case) were on the wire, unanswered, at both of ghostscan's looks; none ended",
		requests, probes, late)
	assert.Positive(t, requests, "ghostscan ran while requests were unanswered after an idle spell: the old verdict's case")
	assert.Positive(t, probes, "ghostscan ran while keepalive probes were unanswered")

	ghost := dialFrom(t, l, netip.Addr{}, echoPort)
	require.NoError(t, ping(ghost))
	stream(ghost, 10*time.Millisecond)
	time.Sleep(time.Second)
	require.NoError(t, l.Vanish(lab.Server))
	vanished := time.Now()
	for {
		var ended *reclaim.Reaped
		for _, r := range reap("the vanished") {
			if r.Conn.Local == remote(ghost) {
				ended = r
			}
		}
		if ended != nil {
			assert.Equal(t, reclaim.Ended, ended.Outcome)
			s := ended.Conn.Snapshot
			assert.GreaterOrEqual(t, s.Tries(), 2)
			assert.GreaterOrEqual(t, s.Unanswered(), reapSilent)
			t.Logf("the vanished peer's connection ended %v after the vanishing: %d retransmissions, unanswered at least %v",
				time.Since(vanished).Round(time.Millisecond), s.Retransmits, s.Unanswered().Round(time.Millisecond))
			break
		}
		require.Less(t, time.Since(vanished), reapSilent+30*time.Second, "the vanished peer's connection was never ended")
		time.Sleep(500 * time.Millisecond)
	}
}

// classIDs is what ss -tna --tos reports on the server host as the
// cgroup class id of each socket with local port port, by "local peer".
func classIDs(t *testing.T, l *lab.Lab, port int) map[string]string {
	t.Helper()
	var out []byte
	var err error
	l.InServer(func() {
		out, err = exec.Command("ss", "-tnaH", "--tos", fmt.Sprintf("sport = :%d", port)).CombinedOutput()
	})
	require.NoError(t, err, "%s", out)
	ids := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		for _, x := range f[5:] {
			if id, ok := strings.CutPrefix(x, "class_id:"); ok {
				ids[f[3]+" "+f[4]] = id
			}
		}
	}
	return ids
}

// netClsServer is the Python echo server started in a net_cls cgroup of
// cgroup v1 whose class id is classID, mounted at dir in a mount
// namespace of its own; the cgroup is removed when the test ends.
func netClsServer(t *testing.T, l *lab.Lab, dir string, classID int) *server {
	t.Helper()
	py := requireTool(t, "/usr/bin/python3", "python3")
	unshare := requireTool(t, "/usr/bin/unshare", "util-linux")
	script := filepath.Join(t.TempDir(), "echo.py")
	require.NoError(t, os.WriteFile(script, []byte(echoServer), 0o644))
	// Registered first, so that it runs after the server has ended: a
	// cgroup with a process in it cannot be removed, and an empty
	// hierarchy ends with its last mount.
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c",
				`mount -t cgroup -o net_cls ghostsock "$1" && rmdir "$1/gs"; s=$?; umount "$1"; exit $s`, "sh", dir).CombinedOutput()
			if err == nil || time.Now().After(deadline) {
				assert.NoError(t, err, "removing the test's net_cls cgroup: %s", out)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	shell := `mount -t cgroup -o net_cls ghostsock "$1" && mkdir "$1/gs" && echo "$2" > "$1/gs/net_cls.classid" && echo $$ > "$1/gs/cgroup.procs" && umount -l "$1" && exec "$3" -u "$4" "$5" "$6"`
	cmd := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c", shell, "sh",
		dir, strconv.Itoa(classID), py, script, l.ServerAddr.String(), strconv.Itoa(echoPort))
	return start(t, l, "python3 echo in a net_cls cgroup", cmd, l.ServerAddrPort(echoPort), syscall.SIGTERM)
}

// TestGhostscanLeavesCgroupClass: where cgroup v1's net_cls is mounted, a
// socket taken with pidfd_getfd is re-tagged with the taker's class id.
// The census, -watch and a refused -harden and -undo leave a server's
// sockets in their class (ss reads it), and say why they read no option;
// a bare duplicate, the control, re-tags the listener.
//
// Not parallel: while net_cls is mounted anywhere, no census on this
// machine reads options, the other tests' included.
func TestGhostscanLeavesCgroupClass(t *testing.T) {
	var u unix.Utsname
	require.NoError(t, unix.Uname(&u))
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	if major < 5 || major == 5 && minor < 15 {
		// Before 5.15 a class id set turns cgroup v2's socket matching off
		// for the host until it restarts (cgroup_sk_alloc_disable).
		t.Skipf("kernel %s: net_cls would change this host for good; run on 5.15 or later", unix.ByteSliceToString(u.Release[:]))
	}
	l := newLab(t)
	bin := ghostscanBin(t)
	const classID = 0x100001
	srv := netClsServer(t, l, t.TempDir(), classID)
	conn := dialFrom(t, l, netip.Addr{}, echoPort)
	require.NoError(t, ping(conn))
	port := strconv.Itoa(echoPort)
	before := classIDs(t, l, echoPort)
	require.Len(t, before, 2, "the listener and the connection")
	for k, id := range before {
		require.Equal(t, fmt.Sprintf("%#x", classID), id, "%s: in the server's class", k)
	}

	var c census.Census
	ghostscanAs(t, l, bin, nil, "-json", "-port", port).decode(t, &c)
	assert.Contains(t, c.Settings, "re-tag", "the census says why it read no option")
	require.NotEmpty(t, c.Connections)
	for _, conn := range c.Connections {
		assert.False(t, conn.Snapshot.OptionsKnown)
		assert.Contains(t, conn.Settings, "not read")
	}
	r := ghostscanAs(t, l, bin, nil, "-conns", "-port", port)
	assert.Contains(t, r.stdout, "options not read")
	assert.Equal(t, before, classIDs(t, l, echoPort), "the census left every socket in its class")

	addr := l.ServerAddrPort(9464)
	watch := exec.Command(bin, "-watch", "100ms", "-listen", addr, "-port", port)
	var out lockedBuffer
	watch.Stdout, watch.Stderr = &out, &out
	l.InServer(func() { require.NoError(t, watch.Start()) })
	require.Eventually(t, func() bool {
		_, text, err := metrics(t, "http://"+addr+"/metrics")
		return err == nil && strings.Contains(text, "ghostscan_connections")
	}, 10*time.Second, 100*time.Millisecond, "-watch serves: %s", &out)
	time.Sleep(time.Second) // ten censuses more
	require.NoError(t, watch.Process.Signal(syscall.SIGTERM))
	assert.NoError(t, watch.Wait(), "%s", &out)
	assert.Equal(t, before, classIDs(t, l, echoPort), "-watch left every socket in its class")

	record := filepath.Join(t.TempDir(), "harden.json")
	for _, args := range [][]string{{"-harden", "10s", "-yes", "-port", port}, {"-undo", "-yes"}} {
		r := ghostscanAs(t, l, bin, nil, append(args, "-record", record)...)
		assert.Equal(t, 2, r.code, "%v refused", args)
		assert.Contains(t, r.stderr, "re-tag", "%v says why", args)
	}
	assert.NoFileExists(t, record)
	assert.Equal(t, before, classIDs(t, l, echoPort), "the refusals left every socket in its class")

	// The control: the duplicate the census took before this rule.
	require.Len(t, c.Listeners, 1)
	pidfd, err := unix.PidfdOpen(srv.cmd.Process.Pid, 0)
	require.NoError(t, err)
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, c.Listeners[0].FD, 0)
	require.NoError(t, err)
	unix.Close(dup)
	after := classIDs(t, l, echoPort)
	ln := l.ServerAddrPort(echoPort) + " 0.0.0.0:*"
	assert.Equal(t, "0", after[ln], "a bare duplicate re-tags the listener with this process's class: %v", after)
}

// preforkServer is a Python server that forks two children after it
// listens: each accepts and echoes on the listener all three hold, as a
// prefork server's workers do. It prints its children's ids.
const preforkServer = `
import os, socket, sys, threading, time

def echo(c):
    while True:
        b = c.recv(65536)
        if not b:
            c.close()
            return
        c.sendall(b)

ln = socket.socket()
ln.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ln.bind((sys.argv[1], int(sys.argv[2])))
ln.listen(64)
kids = []
for i in range(2):
    pid = os.fork()
    if pid == 0:
        while True:
            c, _ = ln.accept()
            threading.Thread(target=echo, args=(c,), daemon=True).start()
    kids.append(pid)
print("kids", *kids, flush=True)
while True:
    time.sleep(3600)
`

// startPrefork runs preforkServer on the server host and returns it and
// its children's ids; the test ends the children by id.
func startPrefork(t *testing.T, l *lab.Lab) (*server, []int) {
	t.Helper()
	py := requireTool(t, "/usr/bin/python3", "python3")
	script := filepath.Join(t.TempDir(), "prefork.py")
	require.NoError(t, os.WriteFile(script, []byte(preforkServer), 0o644))
	srv := start(t, l, "python3 prefork", exec.Command(py, "-u", script, l.ServerAddr.String(), strconv.Itoa(echoPort)),
		l.ServerAddrPort(echoPort), syscall.SIGKILL)
	var kids []int
	require.Eventually(t, func() bool {
		line, ok := strings.CutPrefix(strings.TrimSpace(srv.out.String()), "kids ")
		if !ok {
			return false
		}
		for _, f := range strings.Fields(line) {
			pid, err := strconv.Atoi(f)
			require.NoError(t, err)
			kids = append(kids, pid)
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "the children's ids: %s", srv.out)
	t.Cleanup(func() {
		for _, pid := range kids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return srv, kids
}

// putBack is what -undo must leave on each socket of before's listener
// port: what it held before, and for a connection accepted since, the
// listener's before with keepalive on (the server may have turned it on
// itself: -undo leaves it on).
func putBack(t *testing.T, l *lab.Lab, before map[string]tuning.Config) {
	t.Helper()
	for peer, o := range options(t, l, echoPort) {
		want, ok := before[peer]
		if !ok {
			want = before["listen "+l.ServerAddrPort(echoPort)]
			want.KeepAlive.Enable = true
		}
		assert.Equal(t, want, o, "%s: put back", peer)
	}
}

// TestGhostscanUndoPrefork: a prefork server's listener, held by the
// parent and two children. -harden -pid CHILD finds it; once the parent
// has exited, -undo puts it back through a child, and the connections
// accepted since, and removes the record.
func TestGhostscanUndoPrefork(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	bin := ghostscanBin(t)
	srv, kids := startPrefork(t, l)
	record := filepath.Join(t.TempDir(), "harden.json")
	first := dialFrom(t, l, netip.Addr{}, echoPort)
	require.NoError(t, ping(first))
	before := options(t, l, echoPort)

	r := ghostscanAs(t, l, bin, nil, "-harden", "10s", "-yes", "-record", record, "-pid", strconv.Itoa(kids[1]))
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "listen  "+l.ServerAddrPort(echoPort), "the listener the child shares")
	for _, pid := range append([]int{srv.cmd.Process.Pid}, kids...) {
		assert.Contains(t, r.stdout, fmt.Sprintf("[%d]:", pid), "every holder named, as ss -p does")
	}
	cfg, _ := hardenBudget(t)
	assert.Equal(t, cfg.UserTimeout, options(t, l, echoPort)["listen "+l.ServerAddrPort(echoPort)].UserTimeout)

	parent := srv.cmd.Process.Pid
	require.NoError(t, srv.cmd.Process.Kill()) // the first holder; the children keep the listener
	require.Eventually(t, func() bool { return procsock.Exited(parent) }, 10*time.Second, 20*time.Millisecond)
	later := dialFrom(t, l, netip.Addr{}, echoPort)
	require.NoError(t, ping(later))
	assert.Equal(t, cfg.UserTimeout, options(t, l, echoPort)[remote(later).String()].UserTimeout, "accepted since: hardened")

	r = ghostscanAs(t, l, bin, nil, "-undo", "-yes", "-record", record)
	assert.Equal(t, 0, r.code)
	assert.NotContains(t, r.stdout, "gone", "the listener lives on in the children")
	assert.NoFileExists(t, record, "everything put back")
	putBack(t, l, before)
	require.NoError(t, ping(first))
	require.NoError(t, ping(later))
}

// TestGhostscanHardenTwiceUndoElsewhere: -harden run twice records the
// connection accepted in between with the listener's first options, not
// with those it inherited; -undo run from another network namespace (the
// client host's) puts back every socket, the connections accepted since
// included, and removes the record.
func TestGhostscanHardenTwiceUndoElsewhere(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	bin := ghostscanBin(t)
	startEcho(t, l)
	record := filepath.Join(t.TempDir(), "harden.json")
	port := strconv.Itoa(echoPort)
	first := dialFrom(t, l, netip.Addr{}, echoPort)
	require.NoError(t, ping(first))
	before := options(t, l, echoPort)

	require.Equal(t, 0, ghostscanAs(t, l, bin, nil, "-harden", "10s", "-yes", "-record", record, "-port", port).code)
	between := dialFrom(t, l, netip.Addr{}, echoPort)
	require.NoError(t, ping(between))
	r := ghostscanAs(t, l, bin, nil, "-harden", "20s", "-yes", "-record", record, "-port", port)
	require.Equal(t, 0, r.code)
	cfg20, err := tuning.ForBudget(20 * time.Second)
	require.NoError(t, err)
	last := dialFrom(t, l, netip.Addr{}, echoPort)
	require.NoError(t, ping(last))
	for _, c := range []net.Conn{first, between, last} {
		assert.Equal(t, cfg20.UserTimeout, options(t, l, echoPort)[remote(c).String()].UserTimeout)
	}

	r = ghostscanIn(t, onClient, bin, nil, "-undo", "-yes", "-record", record)
	assert.Equal(t, 0, r.code, "-undo from the client host's namespace")
	assert.NoFileExists(t, record)
	putBack(t, l, before)
	got := options(t, l, echoPort)
	for _, c := range []net.Conn{between, last} {
		assert.Zero(t, got[remote(c).String()].UserTimeout, "%v: no hardened value kept as its own", remote(c))
	}
}

// TestGhostscanHardenAtOnce: two -harden runs at once, on two servers'
// ports, both exit 0 and the record keeps both, trial after trial.
func TestGhostscanHardenAtOnce(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	bin := ghostscanBin(t)
	ports := []int{echoPort, echoPort + 1}
	for _, p := range ports {
		startEchoOn(t, l, p)
		require.NoError(t, ping(dialFrom(t, l, netip.Addr{}, p)))
	}
	record := filepath.Join(t.TempDir(), "harden.json")
	const trials = 10
	for trial := range trials {
		// Both started before either is waited for: InServer runs one
		// function at a time.
		var cmds []*exec.Cmd
		var outs []*lockedBuffer
		l.InServer(func() {
			for _, p := range ports {
				cmd := exec.Command(bin, "-harden", "10s", "-yes", "-record", record, "-port", strconv.Itoa(p))
				out := &lockedBuffer{}
				cmd.Stdout, cmd.Stderr = out, out
				require.NoError(t, cmd.Start())
				cmds, outs = append(cmds, cmd), append(outs, out)
			}
		})
		for i, cmd := range cmds {
			assert.NoError(t, cmd.Wait(), "trial %d: run %d exits 0: %s", trial, i, outs[i])
		}
		b, err := os.ReadFile(record)
		require.NoError(t, err)
		for _, p := range ports {
			assert.Contains(t, string(b), fmt.Sprintf(":%d\"", p), "trial %d: the record keeps port %d's sockets", trial, p)
		}
		require.Equal(t, 0, ghostscanAs(t, l, bin, nil, "-undo", "-yes", "-record", record).code)
	}

	// -harden and -undo at once take turns too: whichever comes second, the
	// record and the sockets agree (hardened and recorded, or neither).
	cfg, _ := hardenBudget(t)
	listener := "listen " + l.ServerAddrPort(echoPort)
	for trial := range trials {
		var cmds []*exec.Cmd
		var outs []*lockedBuffer
		l.InServer(func() {
			for _, args := range [][]string{{"-harden", "10s", "-yes", "-port", strconv.Itoa(echoPort)}, {"-undo", "-yes"}} {
				cmd := exec.Command(bin, append(args, "-record", record)...)
				out := &lockedBuffer{}
				cmd.Stdout, cmd.Stderr = out, out
				require.NoError(t, cmd.Start())
				cmds, outs = append(cmds, cmd), append(outs, out)
			}
		})
		assert.NoError(t, cmds[0].Wait(), "trial %d: -harden exits 0: %s", trial, outs[0])
		cmds[1].Wait() // 2 if it came first: nothing to undo
		got := options(t, l, echoPort)[listener].UserTimeout
		if _, err := os.Stat(record); err == nil {
			assert.Equal(t, cfg.UserTimeout, got, "trial %d: recorded, so hardened: %s", trial, outs[1])
			require.Equal(t, 0, ghostscanAs(t, l, bin, nil, "-undo", "-yes", "-record", record).code)
		} else {
			assert.Zero(t, got, "trial %d: no record, so put back: %s", trial, outs[1])
		}
	}
}
