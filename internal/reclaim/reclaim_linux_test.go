package reclaim

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/tuning"
)

func TestDead(t *testing.T) {
	silent := 3 * time.Second
	const rto = 600 * time.Millisecond // a 300 ms path's
	est := tuning.Snapshot{State: tuning.TCPEstablished, RTO: rto}
	with := func(f func(*tuning.Snapshot)) tuning.Snapshot { s := est; f(&s); return s }
	for _, c := range []struct {
		name string
		s    tuning.Snapshot
		want bool
	}{
		{"retransmitting into silence past -silent", with(func(s *tuning.Snapshot) {
			s.UnackedSegments, s.Retransmits, s.Backoff, s.RTO = 3, 4, 4, 16*rto
			s.SinceACK, s.SinceDataReceived, s.SinceDataSent = time.Minute, time.Minute, 2*time.Second
		}), true},
		{"retransmitting, not yet for -silent", with(func(s *tuning.Snapshot) {
			s.UnackedSegments, s.Retransmits, s.Backoff, s.RTO = 3, 2, 2, 4*rto
			s.SinceACK, s.SinceDataReceived, s.SinceDataSent = time.Minute, time.Minute, 100*time.Millisecond
		}), false},
		{"idle 4 s, a request just sent, its answer on the way", with(func(s *tuning.Snapshot) {
			s.UnackedSegments, s.UnackedBytes = 5, 5
			s.SinceACK, s.SinceDataReceived, s.SinceDataSent = 4*time.Second, 4*time.Second, 10*time.Millisecond
		}), false},
		{"idle 2 h, its first keepalive probe on the wire", with(func(s *tuning.Snapshot) {
			s.Probes, s.SinceACK, s.SinceDataReceived = 1, 2*time.Hour, 2*time.Hour
			s.Options.KeepAlive.Enable = true
		}), false},
		{"keepalive probes unanswered past -silent", with(func(s *tuning.Snapshot) {
			s.Probes, s.SinceACK, s.SinceDataReceived = 5, 2*time.Hour, 2*time.Hour
			s.Options.KeepAlive.Enable, s.Options.KeepAlive.Interval, s.OptionsKnown = true, time.Second, true
		}), true},
		{"one RTO fired long after the last ACK: a lost segment", with(func(s *tuning.Snapshot) {
			s.UnackedSegments, s.Retransmits, s.Backoff, s.RTO = 1, 1, 1, 2*rto
			s.SinceACK, s.SinceDataReceived, s.SinceDataSent = time.Hour, time.Hour, 10*time.Millisecond
		}), false},
		{"idle with keepalive off, however long", with(func(s *tuning.Snapshot) { s.SinceACK, s.SinceDataReceived = time.Hour, time.Hour }), false},
		{"stalled: its peer answers", with(func(s *tuning.Snapshot) {
			s.NotSentBytes, s.Probes, s.SinceACK, s.SinceDataReceived = 1<<20, 1, 100*time.Millisecond, time.Hour
		}), false},
	} {
		conn := &census.Conn{Snapshot: c.s, Verdict: c.s.Verdict()}
		assert.Equal(t, c.want, Dead(conn, silent), c.name)
	}
}

// restore puts back only what is still as Harden set it.
func TestRestore(t *testing.T) {
	ka := func(on bool, idle, intvl time.Duration, n int) net.KeepAliveConfig {
		return net.KeepAliveConfig{Enable: on, Idle: idle, Interval: intvl, Count: n}
	}
	before := tuning.Config{KeepAlive: ka(false, 2*time.Hour, 75*time.Second, 9)}
	after := tuning.Config{UserTimeout: 7 * time.Second, KeepAlive: ka(true, 3*time.Second, 2*time.Second, 3)}
	assert.Equal(t, before, restore(after, before, after), "untouched since: all of it put back")
	// The process set its own keepalive since (as Go's accept does): it
	// keeps it; the user timeout is still Harden's.
	own := tuning.Config{UserTimeout: 7 * time.Second, KeepAlive: ka(true, 15*time.Second, 15*time.Second, 9)}
	assert.Equal(t, tuning.Config{KeepAlive: own.KeepAlive}, restore(own, before, after))
}

// A socket hardened twice keeps its first Before: the process's own. A set
// that did not take leaves the record as it was.
func TestRecordMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "harden.json")
	a := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	ut := func(d time.Duration) census.ConfigJSON { return census.OptionsJSON(tuning.Config{UserTimeout: d}) }
	first := &Change{Kind: Listening, Local: a("10.0.0.1:80"), PID: 7, Start: 99, Socket: census.Socket{Inode: 5, Cookie: 50, FD: 3},
		Before: ut(0), After: ut(time.Second), Outcome: "set"}
	merge := func(chs ...*Change) {
		require.NoError(t, locked(path, func() error {
			r, err := readRecord(path)
			if err == nil {
				r.took(chs, r.add(chs))
				err = writeRecord(path, r)
			}
			return err
		}))
	}
	merge(first)
	second := *first
	second.Before, second.After = first.After, ut(2*time.Second)
	second.PID, second.Start = 8, 100 // held through another process now: the same socket by its cookie
	other := *first
	other.Inode, other.Cookie = 6, 60
	merge(&second, &other)
	third, failedNew := *first, *first
	third.After, third.Outcome = ut(3*time.Second), "failed: EPERM"
	failedNew.Inode, failedNew.Cookie, failedNew.Outcome = 7, 70, "failed: EPERM"
	merge(&third, &failedNew)
	r, err := readRecord(path)
	require.NoError(t, err)
	require.Len(t, r.Changes, 2, "a new socket whose set failed is not recorded")
	assert.Equal(t, tuning.Config{}, r.Changes[0].Before.Config(), "the first Before kept")
	assert.Equal(t, 2*time.Second, r.Changes[0].After.Config().UserTimeout, "the latest After that took")
	assert.Empty(t, r.Changes[0].Outcome, "a record holds no outcome")

	// A record written before cookies were kept finds the socket by its
	// inode: hardened again, it keeps its Before.
	old := &Record{Changes: []*Change{{Kind: Connected, Socket: census.Socket{Inode: 9}, Before: ut(0), After: ut(time.Second)}}}
	again := &Change{Kind: Connected, Socket: census.Socket{Inode: 9, Cookie: 90}, Before: ut(time.Second), After: ut(2 * time.Second), Outcome: "set"}
	old.took([]*Change{again}, old.add([]*Change{again}))
	require.Len(t, old.Changes, 1)
	assert.Equal(t, ut(0), old.Changes[0].Before)

	require.NoError(t, writeRecord(path, &Record{}))
	assert.NoFileExists(t, path, "an empty record is removed")
	_, err = Undo(path, false)
	assert.ErrorContains(t, err, "nothing to undo")
}

// Runs at once take turns: every entry each wrote is kept. The record is
// never read or written through a symbolic link.
func TestRecordLocked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "harden.json")
	const runs = 40
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := &Change{Kind: Connected, Socket: census.Socket{Cookie: uint64(i + 1)}, Outcome: "set"}
			assert.NoError(t, locked(path, func() error {
				r, err := readRecord(path)
				if err == nil {
					r.took([]*Change{ch}, r.add([]*Change{ch}))
					err = writeRecord(path, r)
				}
				return err
			}))
		}()
	}
	wg.Wait()
	r, err := readRecord(path)
	require.NoError(t, err)
	assert.Len(t, r.Changes, runs, "no run lost another's entry")
	left, err := filepath.Glob(filepath.Join(dir, ".harden.json.*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary file left")

	target := filepath.Join(dir, "elsewhere")
	require.NoError(t, os.WriteFile(target, []byte("{}"), 0o600))
	link := filepath.Join(dir, "link.json")
	require.NoError(t, os.Symlink(target, link))
	_, err = readRecord(link)
	assert.ErrorIs(t, err, ErrRecord, "a record that is a symbolic link is refused")
	require.NoError(t, os.Symlink(target, link+".lock"))
	assert.ErrorIs(t, locked(link, func() error { return nil }), ErrRecord, "so is a lock file that is one")
	b, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "{}", string(b), "the link's target untouched")
}

func TestHardenRefuses(t *testing.T) {
	record := filepath.Join(t.TempDir(), "harden.json")
	never := func(*Plan) { t.Error("a refused plan is shown") }
	_, err := Harden(census.Options{}, 10*time.Second, false, record, true, never)
	assert.ErrorIs(t, err, ErrNoFilter)
	_, err = Harden(census.Options{Filter: census.Filter{Port: 1}}, time.Millisecond, false, record, true, never)
	assert.ErrorIs(t, err, tuning.ErrBudget)
}
