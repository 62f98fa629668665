package tuning

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ghostsock/ghostsock/tuning/internal/guard"
)

func TestClassify(t *testing.T) {
	opErr := func(op string, errno syscall.Errno) error {
		return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
	}
	for _, tc := range []struct {
		name string
		err  error
		want Cause
	}{
		{"nil", nil, CauseNone},
		{"read ETIMEDOUT", opErr("read", syscall.ETIMEDOUT), CauseSilentPeer},
		{"write EHOSTUNREACH (an ICMP error was the last word)", opErr("write", syscall.EHOSTUNREACH), CauseSilentPeer},
		{"read ECONNRESET", opErr("read", syscall.ECONNRESET), CauseReset},
		{"write EPIPE", opErr("write", syscall.EPIPE), CauseReset},
		{"dial ECONNREFUSED", opErr("dial", syscall.ECONNREFUSED), CauseRefused},
		{"net/http wraps in *url.Error", &url.Error{Op: "Get", URL: "http://x", Err: opErr("read", syscall.ETIMEDOUT)}, CauseSilentPeer},
		{"joined with the guard's own failure", errors.Join(opErr("write", syscall.ECONNRESET), errors.New("ghostsock: window guard stopped")), CauseReset},
		{"io.EOF", io.EOF, CauseClosed},
		{"net.ErrClosed", fmt.Errorf("read: %w", net.ErrClosed), CauseClosed},
		{"a deadline is not a silent peer", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, CauseOther},
		{"context canceled", context.Canceled, CauseOther},
		// grpc-go keeps only the text of a transport error in its status.
		{"grpc status, reaped", status.Error(codes.Unavailable, `error reading from server: read tcp 198.18.1.1:40000->198.18.1.2:50051: read: connection timed out`), CauseSilentPeer},
		{"grpc status, reset", status.Error(codes.Unavailable, `error reading from server: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer`), CauseReset},
		{"grpc status, refused", status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`), CauseRefused},
		{"grpc status, EOF", status.Error(codes.Unavailable, `error reading from server: EOF`), CauseClosed},
		{"grpc status, deadline", status.Error(codes.DeadlineExceeded, `context deadline exceeded`), CauseOther},
		{"x/net/http2, errors kept as text", errors.New("http2: client connection lost"), CauseOther},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, Classify(tc.err)) })
	}
}

func TestRefine(t *testing.T) {
	busy := Snapshot{State: TCPClosed, UnackedSegments: 3, PeerWindow: 65535}
	busyShut := Snapshot{State: TCPClosed, UnackedSegments: 1}
	shut := Snapshot{State: TCPClosed, NotSentBytes: 1 << 20}
	shutSilent := shut
	shutSilent.Probes = 2
	guardedShut := shut
	guardedShut.Guarded = true
	idle := Snapshot{State: TCPClosed, Probes: 1, PeerWindow: 65535}
	for _, tc := range []struct {
		name string
		c    Cause
		s    Snapshot
		cut  guard.Cut
		want Cause
	}{
		{"data in flight: busy", CauseSilentPeer, busy, guard.CutNone, CauseReapedBusy},
		{"nothing queued: idle", CauseSilentPeer, idle, guard.CutNone, CauseReapedIdle},
		{"shut window, no probe out, unguarded: a live peer cut", CauseSilentPeer, shut, guard.CutNone, CauseWindowStall},
		{"shut window, one probe out (in flight), unguarded: a live peer cut", CauseSilentPeer, Snapshot{State: TCPClosed, NotSentBytes: 1, Probes: 1}, guard.CutNone, CauseWindowStall},
		{"shut window, probes unanswered: busy", CauseSilentPeer, shutSilent, guard.CutNone, CauseReapedBusy},
		{"in flight into a shut window, unguarded: a live peer cut (tcp_rtx_probe0_timed_out)", CauseSilentPeer, busyShut, guard.CutNone, CauseWindowStall},
		{"guarded, silence verdict", CauseSilentPeer, guardedShut, guard.CutSilent, CauseReapedBusy},
		{"guarded, stall verdict", CauseSilentPeer, guardedShut, guard.CutStalled, CauseWindowStall},
		{"not a silent peer: unchanged", CauseReset, busy, guard.CutNone, CauseReset},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, refine(tc.c, tc.s, tc.cut)) })
	}
	for c := CauseNone; c <= CauseOther; c++ {
		assert.NotContains(t, c.String(), "Cause(", "every cause has a name")
	}
	assert.True(t, CauseReapedBusy.Reaped())
	assert.False(t, CauseWindowStall.Reaped())
}
