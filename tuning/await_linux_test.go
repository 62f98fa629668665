package tuning

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAwaiting: a Lean connection probes with its Config's schedule while
// a mark is held, and stops at the last release; a connection that is not
// Lean is left alone.
func TestAwaiting(t *testing.T) {
	ln := loopback(t)
	lean := budget5.Lean()
	require.True(t, lean.LeanAwaits())
	client, _ := pair(t, ln, dialWith(lean))
	conn := client.(*Conn)
	keepalive := func() net.KeepAliveConfig {
		c, err := Read(conn)
		require.NoError(t, err)
		return c.KeepAlive
	}
	assert.False(t, keepalive().Enable, "a Lean connection idles without probes")
	first, err := conn.Awaiting()
	require.NoError(t, err)
	ka := keepalive()
	assert.True(t, ka.Enable, "awaiting, it probes")
	assert.Equal(t, budget5.KeepAlive.Idle, ka.Idle, "with the budget's schedule")
	assert.Equal(t, budget5.KeepAlive.Interval, ka.Interval)
	second, err := conn.Awaiting()
	require.NoError(t, err)
	first()
	first() // a second call does nothing
	assert.True(t, keepalive().Enable, "one mark is still held")
	second()
	assert.False(t, keepalive().Enable, "the last release stops the probes")
	idle, _ := budget5.Bounds()
	assert.Equal(t, idle, lean.AwaitBound(), "awaiting, the budget's idle bound holds")

	// Apply keeps the marks: a Lean Config applied during a wait keeps it
	// probing; a Config that probes anyway is not turned off by the
	// release of a mark taken before it.
	held, err := conn.Awaiting()
	require.NoError(t, err)
	longer := lean
	longer.UserTimeout += time.Second
	require.NoError(t, longer.Apply(conn))
	assert.True(t, keepalive().Enable, "a Lean Config applied during a wait: still probing")
	require.NoError(t, budget5.Apply(conn))
	held()
	assert.True(t, keepalive().Enable, "the release leaves a probing Config's keepalive on")

	// Not Lean: keepalive is on already, and Awaiting leaves it so.
	other, _ := pair(t, ln, dialWith(budget5))
	release, err := other.(*Conn).Awaiting()
	require.NoError(t, err)
	release()
	c, err := Read(other)
	require.NoError(t, err)
	assert.True(t, c.KeepAlive.Enable, "a connection that probes anyway keeps probing")
}
