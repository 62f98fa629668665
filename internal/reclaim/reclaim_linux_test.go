package reclaim

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/tuning"
)

func TestDead(t *testing.T) {
	silent := time.Minute
	for _, c := range []struct {
		name    string
		verdict tuning.Verdict
		silence time.Duration
		want    bool
	}{
		{"suspected, silent long enough", tuning.Suspected, silent, true},
		{"suspected, answered within -silent", tuning.Suspected, silent - time.Millisecond, false},
		{"idle with keepalive off, however long", tuning.Unwatched, time.Hour, false},
		{"stalled: its peer answers", tuning.WindowStalled, time.Hour, false},
		{"alive", tuning.Alive, time.Hour, false},
	} {
		conn := &census.Conn{Verdict: c.verdict, Snapshot: tuning.Snapshot{SinceACK: c.silence, SinceDataReceived: c.silence}}
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

// A socket hardened twice keeps its first Before: the process's own.
func TestRecordMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "harden.json")
	a := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	first := &Change{Kind: Listening, Local: a("10.0.0.1:80"), PID: 7, Start: 99, Socket: census.Socket{Inode: 5, FD: 3},
		Before: census.OptionsJSON(tuning.Config{}), After: census.OptionsJSON(tuning.Config{UserTimeout: time.Second}), Outcome: "would set"}
	require.NoError(t, mergeRecord(path, []*Change{first}))
	second := *first
	second.Before, second.After = first.After, census.OptionsJSON(tuning.Config{UserTimeout: 2 * time.Second})
	other := *first
	other.Inode = 6
	require.NoError(t, mergeRecord(path, []*Change{&second, &other}))
	r, err := readRecord(path)
	require.NoError(t, err)
	require.Len(t, r.Changes, 2)
	assert.Equal(t, tuning.Config{}, r.Changes[0].Before.Config(), "the first Before kept")
	assert.Equal(t, 2*time.Second, r.Changes[0].After.Config().UserTimeout, "the latest After")
	assert.Empty(t, r.Changes[0].Outcome, "a record holds no outcome")
	require.NoError(t, writeRecord(path, &Record{}))
	assert.NoFileExists(t, path, "an empty record is removed")
	_, err = Undo(path, false)
	assert.ErrorContains(t, err, "nothing to undo")
}

func TestHardenRefuses(t *testing.T) {
	_, err := PlanHarden(census.Options{}, 10*time.Second, false)
	assert.ErrorIs(t, err, ErrNoFilter)
	_, err = PlanHarden(census.Options{Filter: census.Filter{Port: 1}}, time.Millisecond, false)
	assert.ErrorIs(t, err, tuning.ErrBudget)
}
