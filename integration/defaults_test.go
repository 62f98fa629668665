//go:build linux

package integration

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ghostsock/ghostsock/tuning/ghostmetrics"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/integration/testsvc"
	"github.com/ghostsock/ghostsock/tuning"
)

// The default entry points (Listen, WrapListener, httptransport.New) guard
// by default: a live reader that pauses, or resumes slowly, keeps its
// connection with no guard asked for, and a vanished one is still found.

func defaultDial(c tuning.Config) func(string, string) (net.Conn, error) {
	dial := c.DialFunc(nil)
	return func(network, addr string) (net.Conn, error) { return dial(context.Background(), network, addr) }
}

// readSlowly reads r as a rate-limited client does: it pauses, then reads
// 24 KiB every 150 ms for slowFor (each read reopens the window only in
// part), then the rest at full speed. It returns the count and SHA-256.
func readSlowly(r io.Reader, pause, slowFor time.Duration) (int64, []byte, error) {
	h := sha256.New()
	time.Sleep(pause)
	var n int64
	for end := time.Now().Add(slowFor); time.Now().Before(end); time.Sleep(150 * time.Millisecond) {
		m, err := io.CopyN(h, r, 24<<10)
		n += m
		if err != nil {
			return n, nil, err
		}
	}
	m, err := io.Copy(h, r)
	return n + m, h.Sum(nil), err
}

func checkRead(t *testing.T, n int64, sum []byte, err error, written <-chan error, size int64) {
	t.Helper()
	require.NoError(t, err, "reader after %d bytes", n)
	require.NoError(t, <-written, "writer")
	assert.Equal(t, size, n, "bytes received")
	assert.Equal(t, patternSum(size), sum, "checksum")
}

func TestDefaultsKeepPausedReaders(t *testing.T) {
	t.Parallel()
	c := kit(t)
	pause := 3 * budget

	t.Run("raw TCP, Listen: the accepted writer's reader pauses three budgets", func(t *testing.T) {
		t.Parallel()
		client, server := tcpPair(t, newLab(t), c.Listen, c.Dialer().Dial)
		require.IsType(t, &tuning.GuardedConn{}, server, "Listen guards by default")
		checkPaused(t, client, pause, sendPattern(server, pausedSize, 0))
	})
	t.Run("raw TCP, DialFunc: the dialed writer's reader pauses three budgets", func(t *testing.T) {
		t.Parallel()
		client, server := tcpPair(t, newLab(t), c.Listen, defaultDial(c))
		checkPaused(t, server, pause, sendPattern(client, pausedSize, 0))
	})
	t.Run("raw TCP, Listen: pause 2.5 s, then partial reopenings for three budgets", func(t *testing.T) {
		t.Parallel()
		client, server := tcpPair(t, newLab(t), c.Listen, c.Dialer().Dial)
		const size = 16 << 20
		written := sendPattern(server, size, 0)
		n, sum, err := readSlowly(client, 2500*time.Millisecond, pause)
		checkRead(t, n, sum, err, written, size)
	})
	t.Run("HTTP/1.1, Listen: a file served with io.Copy, client pauses three budgets", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "body")
		f, err := os.Create(path)
		require.NoError(t, err)
		_, err = io.Copy(f, io.LimitReader(testsvc.Pattern(), pausedSize))
		require.NoError(t, err)
		require.NoError(t, f.Close())
		handlerErr := make(chan error, 1)
		srv, url := httpServer(t, newLab(t), c.Listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f, err := os.Open(path)
			if err != nil {
				handlerErr <- err
				return
			}
			defer f.Close()
			_, err = io.Copy(w, f) // sendfile, through the guard
			handlerErr <- err
		}), false, nil)
		resp, err := clientFor(srv, httptransport.New(c), false).Get(url + "/file")
		require.NoError(t, err)
		defer resp.Body.Close()
		checkPaused(t, resp.Body, pause, handlerErr)
	})
	t.Run("HTTP/1.1 request body, httptransport.New: server pauses three budgets", func(t *testing.T) {
		t.Parallel()
		uploadPaused(t, newLab(t), c.Listen, httptransport.New(c), pause)
	})
	t.Run("curl --limit-rate 2M downloads from a Listen server for three budgets", func(t *testing.T) {
		t.Parallel()
		curl := requireTool(t, "curl", "curl")
		written := make(chan error, 1)
		_, url := httpServer(t, newLab(t), c.Listen, endless(written), false, nil)
		// curl's rate limiter reads a burst, then stops reading for
		// seconds: the window shuts, again and again.
		out, err := exec.Command(curl, "--silent", "--show-error", "--limit-rate", "2M",
			"--max-time", strconv.Itoa(int(pause/time.Second)), "--output", "/dev/null",
			"--write-out", "%{size_download}", url+"/endless").Output()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "curl: %v %s", err, out)
		assert.Equal(t, 28, exit.ExitCode(), "curl ends at its own --max-time (28), not cut (18, 56): %s", exit.Stderr)
		got, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		require.NoError(t, err, "size_download %q", out)
		t.Logf("curl downloaded %.1f MiB in %v", got/(1<<20), pause)
		assert.Greater(t, got, float64(2<<20), "downloaded for the whole run")
		select {
		case err := <-written:
			assert.False(t, errors.Is(err, syscall.ETIMEDOUT), "the server's write was cut: %v", err)
		case <-time.After(time.Second):
		}
	})
}

// guardedWindow is when a guarded writer may find a reader that vanished
// while paused: within GuardBound, and not before the guard can have
// judged the silence. It counts silence from the reader's last probe
// answer, which may precede the vanishing by up to one probe cap (1 s at
// this budget), and judges it after one and a half caps: so no earlier
// than half a cap after the vanishing. It comes early because the
// kernel's zero-window clock has run since the pause began: the verdict
// ends the connection at the next probe.
func guardedWindow(c tuning.Config) window {
	return window{c.GuardHolds().RTOMax / 2, c.GuardBound()}
}

func TestDefaultsStillDetectVanishedReaders(t *testing.T) {
	t.Parallel()
	c := kit(t)
	bound := c.GuardBound()

	t.Run("reader paused, then vanishes: found within GuardBound", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		_, server := tcpPair(t, l, c.Listen, c.Dialer().Dial)
		sent := sendPattern(server, pausedSize, 0)
		time.Sleep(2 * budget) // the window shuts; the guard holds the user timeout at 0
		require.NoError(t, l.Vanish(lab.Client))
		vanished := time.Now()
		end, err := waitErr(t, sent, bound+3*budget)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "guarded writer, reader vanished with its window shut", end.Sub(vanished), guardedWindow(c))
	})
	// The first guard never lowered a raised user timeout while the window
	// was shut, so a raise from a long pause outlived a full reopening and
	// a reader that vanished in a later pause was found far past
	// GuardBound.
	t.Run("reader pauses long, drains, pauses again, vanishes: found within GuardBound", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		client, server := tcpPair(t, l, c.Listen, c.Dialer().Dial)
		sent := sendPattern(server, pausedSize, 0)
		time.Sleep(3 * budget)
		_, err := io.CopyN(io.Discard, client, 16<<20) // a full drain
		require.NoError(t, err)
		time.Sleep(budget / 2) // shut again
		require.NoError(t, l.Vanish(lab.Client))
		vanished := time.Now()
		end, err := waitErr(t, sent, bound+3*budget)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "guarded writer, reader vanished in its second pause", end.Sub(vanished), guardedWindow(c))
	})
}

func TestStallCap(t *testing.T) {
	t.Parallel()
	c, m := counted(t)
	c.StallTimeout = 2 * budget
	l := newLab(t)
	client, server := tcpPair(t, l, c.Listen, c.Dialer().Dial)
	require.IsType(t, &tuning.GuardedConn{}, server)
	// A hostile reader: alive (its kernel answers every probe), never
	// reads. The guard holds it no longer than StallTimeout.
	start := time.Now()
	sent := sendPattern(server, pausedSize, 0)
	end, err := waitErr(t, sent, c.StallBound()+3*budget)
	assert.ErrorIs(t, err, syscall.ETIMEDOUT)
	took := end.Sub(start)
	t.Logf("stalled reader cut after %v (StallTimeout %v, StallBound %v)", took.Round(time.Millisecond), c.StallTimeout, c.StallBound())
	assert.GreaterOrEqual(t, took, c.StallTimeout, "cut before the stall reached StallTimeout")
	assert.LessOrEqual(t, took, c.StallBound()+lab.Late, "cut too late")
	// Counted as a live reader cut, not as a reap.
	_, r := waitEnded(t, m, "accepted", time.Second)
	assert.EqualValues(t, 1, r.Sum(ghostmetrics.EndedName, "ghostsock.connection.side=accepted", "ghostsock.connection.end_cause=window_stall"), "%v", r.Sums)
	assert.EqualValues(t, 1, r.Sum(ghostmetrics.EndedName), "%v", r.Sums)
	_ = client
}
