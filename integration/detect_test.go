//go:build linux

package integration

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// budget is the B of the matrix: small, so the suite is quick, and large
// enough for a few keepalive probes.
const budget = 3 * time.Second

func kit(t *testing.T) tuning.Config {
	c, err := tuning.ForBudget(budget)
	require.NoError(t, err)
	return c
}

// window is when a detection may come, measured from the vanishing: not
// before the kernel's nominal timers (Config.Earliest) less lab.Early, and
// not after the worst case (Config.Bounds) plus lab.Late.
type window struct{ earliest, bound time.Duration }

// windows returns c's windows for an idle and a busy connection.
func windows(c tuning.Config) (idle, busy window) {
	ei, eb := c.Earliest()
	bi, bb := c.Bounds()
	return window{ei, bi}, window{eb, bb}
}

// either is the window of a connection that may be idle or busy when its
// peer vanishes (the last frame of a conversation still unacknowledged).
func either(a, b window) window {
	return window{min(a.earliest, b.earliest), max(a.bound, b.bound)}
}

// expectWithin checks that a detection measured from the vanishing lies in
// w and logs it against the worst case.
func expectWithin(t *testing.T, what string, measured time.Duration, w window) {
	t.Helper()
	lag := schedLag.worstSince(time.Now().Add(-measured))
	t.Logf("%s: detected after %v, worst case %v, measured/worst %.3f (this process ran up to %v late meanwhile)",
		what, measured.Round(time.Millisecond), w.bound, float64(measured)/float64(w.bound), lag.Round(time.Millisecond))
	assert.GreaterOrEqual(t, measured, w.earliest-lab.Early, "%s: killed too early", what)
	assert.LessOrEqual(t, measured, w.bound+lab.Late+lag, "%s: detected too late (bound %v + %v + this process's lateness %v)", what, w.bound, lab.Late, lag)
}

// waitErr waits for an operation's error, for at most limit, and returns
// when it came.
func waitErr(t *testing.T, errc <-chan error, limit time.Duration) (time.Time, error) {
	t.Helper()
	select {
	case err := <-errc:
		return time.Now(), err
	case <-time.After(limit):
		t.Fatalf("no error within %v", limit)
		return time.Time{}, nil
	}
}

// stillEstablished checks, three budgets after the vanishing, that the
// observer's socket is still ESTABLISHED: without the kit nothing noticed.
func stillEstablished(t *testing.T, rc syscall.RawConn, vanished time.Time) {
	t.Helper()
	time.Sleep(time.Until(vanished.Add(3 * budget)))
	info, err := lab.TCPInfo(rc)
	require.NoError(t, err)
	t.Logf("control: %s after %v without the kit (retransmits %d, probes %d, rto %v)",
		lab.StateName(info.State), time.Since(vanished).Round(time.Millisecond), info.Retransmits, info.Probes, time.Duration(info.Rto)*time.Microsecond)
	assert.Equal(t, uint8(lab.StateEstablished), info.State, "control connection should still be ESTABLISHED")
}

func rawConn(t *testing.T, c net.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	return rc
}
