// Package netns runs code in another network namespace, on an OS thread
// of its own that goes back to where it was before it serves anything
// else, or else ends with the code.
package netns

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// Do runs fn with the calling goroutine's thread in the network namespace
// nsfd refers to (a /proc/PID/ns/net descriptor, or one from SIOCGSKNS),
// and returns its error. The thread is locked for fn; if it cannot be put
// back in its own namespace it stays locked, and Go ends it when the
// goroutine returns, so no other goroutine ever runs in the wrong one.
func Do(nsfd int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netns: this thread's namespace: %w", os.NewSyscallError("open", err))
			return // still locked: the thread ends with the goroutine
		}
		defer unix.Close(own)
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netns: %w", os.NewSyscallError("setns", err))
			return
		}
		err = fn()
		if serr := unix.Setns(own, unix.CLONE_NEWNET); serr == nil {
			runtime.UnlockOSThread()
		} else if err == nil {
			err = fmt.Errorf("netns: going back: %w", os.NewSyscallError("setns", serr))
		}
		errc <- err
	}()
	return <-errc
}

// OfSocket is a descriptor of the network namespace the socket fd was
// made in (SIOCGSKNS), to Close when done.
func OfSocket(fd uintptr) (int, error) {
	ns, err := unix.IoctlRetInt(int(fd), unix.SIOCGSKNS)
	if err != nil {
		return -1, fmt.Errorf("netns: the socket's namespace: %w", os.NewSyscallError("ioctl SIOCGSKNS", err))
	}
	return ns, nil
}

// Inode is the inode of the namespace nsfd refers to: what
// /proc/PID/ns/net shows as net:[inode].
func Inode(nsfd int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		return 0, fmt.Errorf("netns: %w", os.NewSyscallError("fstat", err))
	}
	return st.Ino, nil
}

// Own is the inode of the calling thread's network namespace.
func Own() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, fmt.Errorf("netns: this thread's namespace: %w", os.NewSyscallError("stat", err))
	}
	return st.Ino, nil
}

// Find is a descriptor of the network namespace whose inode is ino, from
// the first process in /proc that is in it, to Close when done; an error
// wrapping os.ErrNotExist if no process is.
func Find(ino uint64) (int, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return -1, fmt.Errorf("netns: %w", err)
	}
	for _, p := range procs {
		if pid, err := strconv.Atoi(p.Name()); err == nil {
			if fd, ok := OfProcess(pid, ino); ok {
				return fd, nil
			}
		}
	}
	return -1, fmt.Errorf("netns: no process is in net:[%d]: %w", ino, os.ErrNotExist)
}

// OfProcess is a descriptor of process pid's network namespace, to Close
// when done, if that is still net:[ino]; ok is false if the process is
// gone, not the caller's to look into, or elsewhere (its PID reused).
func OfProcess(pid int, ino uint64) (fd int, ok bool) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false
	}
	if got, err := Inode(fd); err != nil || got != ino {
		unix.Close(fd)
		return -1, false
	}
	return fd, true
}
