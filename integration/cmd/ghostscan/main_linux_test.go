package main

import (
	"bytes"
	"encoding/json"
	"math"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ghostsock/ghostsock/internal/census"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-port", "70000"}, {"-peer", "not-an-address"}, {"-limit", "-1s"},
		{"-reap", "-undo"}, {"-reap", "-harden", "10s", "-port", "1"}, {"-reap", "-silent", "0s"}, {"-undo", "-port", "1"},
		{"-harden", "10s"}, {"-harden", "ten seconds", "-port", "1"}, {"-harden", "1ms", "-port", "1"},
		{"-all-netns", "-reap"}, {"-all-netns", "-watch", "30s"}, {"-reap-by", "destroy"}, {"-reap", "-reap-by", "kill"},
		{"-pod", "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"}, {"-all-netns", "-pod", "3f1c"}} {
		var out, errOut bytes.Buffer
		assert.Equal(t, 2, run(args, &out, &errOut), "%v", args)
		assert.NotEmpty(t, errOut.String(), "%v says why", args)
	}
	for _, args := range [][]string{{"-h"}, {"-help"}} {
		var out, errOut bytes.Buffer
		assert.Equal(t, 0, run(args, &out, &errOut), "%v asks for the usage: not bad usage", args)
		assert.Contains(t, errOut.String(), "usage: ghostscan", "%v", args)
	}
}

// A loopback connection with keepalive off is found, judged unwatched and
// makes ghostscan exit 1; filtered away, it exits 0. Its JSON gives every
// duration in milliseconds: a user timeout of 1234 ms set on the socket
// reads as 1234, a keepalive interval of 7 s as 7000.
func TestScanLoopback(t *testing.T) {
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := (&net.Dialer{KeepAlive: -1}).Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	const userTimeout = 1234 * time.Millisecond
	rc, err := client.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(fd uintptr) {
		// Keepalive stays off; its timings are still the socket's to read.
		for opt, v := range map[int]int{unix.TCP_USER_TIMEOUT: int(userTimeout.Milliseconds()), unix.TCP_KEEPIDLE: 11, unix.TCP_KEEPINTVL: 7} {
			if err == nil {
				err = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, opt, v)
			}
		}
	}))
	require.NoError(t, err)

	var out, errOut bytes.Buffer
	code := run([]string{"-json", "-port", port}, &out, &errOut)
	require.Empty(t, errOut.String())
	assert.Equal(t, 1, code, "an unwatched connection: the kernel never ends it")
	var c census.Census
	require.NoError(t, json.Unmarshal(out.Bytes(), &c))
	require.Len(t, c.Connections, 2, "both ends, on loopback")
	require.Len(t, c.Groups, 2, "the listener's, and the dialer's")
	for _, g := range c.Groups {
		assert.Equal(t, 1, g.Established)
		assert.Equal(t, 1, g.Unwatched)
		assert.Equal(t, 1, g.NeverEnds)
		assert.Equal(t, 1, g.SettingsRead, "our own sockets: readable")
	}
	for _, conn := range c.Connections {
		if conn.Local.String() == client.LocalAddr().String() {
			assert.Equal(t, userTimeout, conn.Snapshot.Options.UserTimeout, "read back as it was set")
		}
	}

	// The unit, in the JSON itself: milliseconds, in fields named ...Ms.
	var raw struct {
		TookMs      float64
		Connections []struct {
			Local    string
			EndsInMs float64
			Snapshot struct {
				RTTMs, RTOMs float64
				Options      struct {
					UserTimeoutMs float64
					KeepAlive     struct{ IdleMs, IntervalMs float64 }
				}
			}
		}
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &raw))
	assert.Greater(t, raw.TookMs, 0.0)
	assert.Less(t, raw.TookMs, 60e3, "a scan of a test's namespace takes well under a minute: %v ms", raw.TookMs)
	for _, conn := range raw.Connections {
		assert.Equal(t, -1.0, conn.EndsInMs, "never")
		o := conn.Snapshot.Options
		if conn.Local == client.LocalAddr().String() {
			assert.Equal(t, 1234.0, o.UserTimeoutMs)
			assert.Equal(t, 11000.0, o.KeepAlive.IdleMs)
			assert.Equal(t, 7000.0, o.KeepAlive.IntervalMs)
		} else { // the kernel's defaults, whole seconds
			assert.Equal(t, 0.0, o.UserTimeoutMs)
			assert.Positive(t, o.KeepAlive.IdleMs)
			assert.Zero(t, math.Mod(o.KeepAlive.IdleMs, 1000), "%v ms", o.KeepAlive.IdleMs)
			assert.Zero(t, math.Mod(o.KeepAlive.IntervalMs, 1000), "%v ms", o.KeepAlive.IntervalMs)
		}
		assert.Greater(t, conn.Snapshot.RTOMs, 1.0, "loopback's RTO: some 200 ms")
		assert.Less(t, conn.Snapshot.RTOMs, 3000.0)
		assert.Less(t, conn.Snapshot.RTTMs, conn.Snapshot.RTOMs)
	}

	// The table says the same, as Go durations.
	out.Reset()
	assert.Equal(t, 1, run([]string{"-conns", "-port", port}, &out, &errOut))
	assert.Contains(t, out.String(), " 1.234s ", "the user timeout column:\n%s", out.String())
	assert.Contains(t, out.String(), " never ", "the ends-in column")

	out.Reset()
	assert.Equal(t, 0, run([]string{"-port", port, "-peer", "192.0.2.0/24"}, &out, &errOut), "filtered away")
	assert.Contains(t, out.String(), "0 connections judged")
}

// A server that never closes what its client closed leaks the connection
// in CLOSE_WAIT: the census counts it apart from the established ones,
// with how long it has waited, and the client's closed end, held by no
// process, as a FIN_WAIT2 orphan; the table says both.
func TestScanCloseWait(t *testing.T) {
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := (&net.Dialer{KeepAlive: -1}).Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close() // the leak, until the test ends
	require.NoError(t, client.Close())
	const waited = 300 * time.Millisecond
	time.Sleep(waited)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	var out, errOut bytes.Buffer
	run([]string{"-json", "-port", port}, &out, &errOut)
	require.Empty(t, errOut.String())
	var c census.Census
	require.NoError(t, json.Unmarshal(out.Bytes(), &c))
	require.Len(t, c.Groups, 1, "the listener's: the client's end is closed")
	g := c.Groups[0]
	assert.Equal(t, "listen "+ln.Addr().String(), g.Name)
	assert.Equal(t, 0, g.Established)
	assert.Equal(t, 1, g.CloseWait)
	assert.GreaterOrEqual(t, time.Duration(g.CloseWaitFor), waited-50*time.Millisecond, "since the client's FIN")
	assert.Less(t, time.Duration(g.CloseWaitFor), waited+10*time.Second, "and not from another clock")
	assert.Equal(t, 1, c.FinWait2Orphans, "the client's end, closed and waiting for the server's FIN")

	out.Reset()
	run([]string{"-port", port}, &out, &errOut)
	assert.Contains(t, out.String(), "CLOSE-WAIT (FOR)")
	assert.Contains(t, out.String(), "1 closed by this namespace, waiting for their peer's FIN")
}
