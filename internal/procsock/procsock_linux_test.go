package procsock

import (
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// This process's own socket, reached as another process's would be: the
// right inode runs fn on a duplicate; a wrong one, a start time of another
// process or a closed descriptor run nothing and say why.
func TestSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	defer f.Close()
	fd, pid := int(f.Fd()), os.Getpid()
	ino, err := Inode(pid, fd)
	require.NoError(t, err)
	require.NotZero(t, ino)
	start, err := StartTime(pid)
	require.NoError(t, err)

	p := New()
	defer p.Close()
	if p.Safe() != nil {
		assert.ErrorIs(t, p.Socket(pid, start, fd, ino, 0, func(syscall.RawConn) error { return nil }), ErrRetags,
			"where a duplicate would re-tag, none is taken")
		p.retags = nil // the socket is this test's own: re-tagging it harms no one
	}
	var cookie uint64
	rc, err := ln.(*net.TCPListener).SyscallConn()
	require.NoError(t, err)
	rc.Control(func(fd uintptr) { cookie, err = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE) })
	require.NoError(t, err)
	ran := false
	require.NoError(t, p.Socket(pid, start, fd, ino, cookie, func(rc syscall.RawConn) error {
		var v int
		rc.Control(func(dup uintptr) {
			v, err = unix.GetsockoptInt(int(dup), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		})
		ran = v == 1
		return err
	}))
	assert.True(t, ran, "fn ran on a duplicate of the listening socket")
	never := func(syscall.RawConn) error { t.Error("fn ran"); return nil }
	assert.ErrorIs(t, p.Socket(pid, start, fd, ino+1, 0, never), ErrChanged, "another inode")
	assert.ErrorIs(t, p.Socket(pid, start, fd, ino, cookie+1, never), ErrChanged, "another cookie: another socket took the inode")
	assert.ErrorIs(t, p.Socket(pid, start+1, fd, ino, cookie, never), ErrNoProcess, "another start time: a pid taken again")
	assert.ErrorIs(t, p.Socket(pid, start, 1<<20, ino, cookie, never), ErrChanged, "a descriptor not open")
	_, err = StartTime(1 << 30)
	assert.ErrorIs(t, err, ErrNoProcess)
}
