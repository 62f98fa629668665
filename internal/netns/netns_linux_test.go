package netns

import (
	"errors"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// own is the inode of the calling thread's network namespace.
func own(t *testing.T) uint64 {
	t.Helper()
	ino, err := Own()
	require.NoError(t, err)
	return ino
}

// A socket made in a new namespace names it (OfSocket); Do runs there,
// and the goroutines after it run where they were.
func TestDo(t *testing.T) {
	type made struct {
		ns, sock int
		err      error
	}
	c := make(chan made, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			c <- made{err: err}
			return
		}
		ns, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			c <- made{err: err}
			return
		}
		sock, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		c <- made{ns, sock, err}
	}()
	m := <-c
	if errors.Is(m.err, unix.EPERM) && os.Getenv("CI") != "true" {
		t.Skipf("no new network namespace without CAP_SYS_ADMIN (run as root): %v", m.err)
	}
	require.NoError(t, m.err)
	defer unix.Close(m.ns)
	defer unix.Close(m.sock)
	want, err := Inode(m.ns)
	require.NoError(t, err)
	home := own(t)
	require.NotEqual(t, home, want)

	ns, err := OfSocket(uintptr(m.sock))
	require.NoError(t, err)
	defer unix.Close(ns)
	got, err := Inode(ns)
	require.NoError(t, err)
	assert.Equal(t, want, got, "the socket's namespace")

	var inside uint64
	var ifaces []net.Interface
	require.NoError(t, Do(ns, func() (err error) {
		inside = own(t)
		ifaces, err = net.Interfaces()
		return err
	}))
	assert.Equal(t, want, inside, "fn ran in it")
	assert.Len(t, ifaces, 1, "a new namespace has lo alone")
	for range 2 * runtime.GOMAXPROCS(0) {
		assert.Equal(t, home, own(t), "this goroutine's thread is back home")
		runtime.Gosched()
	}
	assert.Error(t, Do(-1, func() error { t.Error("fn ran"); return nil }), "a bad descriptor: nothing runs")
}
