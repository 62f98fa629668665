package main

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/internal/census"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-port", "70000"}, {"-peer", "not-an-address"}, {"-limit", "-1s"}} {
		var out, errOut bytes.Buffer
		assert.Equal(t, 2, run(args, &out, &errOut), "%v", args)
		assert.NotEmpty(t, errOut.String(), "%v says why", args)
	}
}

// A loopback connection with keepalive off is found, judged unwatched and
// makes ghostscan exit 1; filtered away, it exits 0.
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

	out.Reset()
	assert.Equal(t, 0, run([]string{"-port", port, "-peer", "192.0.2.0/24"}, &out, &errOut), "filtered away")
	assert.Contains(t, out.String(), "0 connections judged")
}
