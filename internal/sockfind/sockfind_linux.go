// Package sockfind finds, among this process's own file descriptors, the
// TCP socket with a given pair of addresses, so that tests can read the
// options of connections that grpc-go or net/http keep to themselves.
package sockfind

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ghostsock/ghostsock/tuning"
)

// Conn returns a duplicate of the socket in this process whose local
// address is local and whose peer is remote. Closing it leaves the original
// open; socket options are shared by both. It is an *os.File, not a
// net.Conn: net.FileConn would turn Go's default keepalive on.
func Conn(local, remote net.Addr) (*os.File, error) {
	return find(func(l, r string) bool { return l == local.String() && r == remote.String() })
}

// Peer returns the socket in this process, other than skip, whose peer is
// remote (the dialing side of a connection when only the server's address
// is known).
func Peer(remote net.Addr, skip net.Addr) (*os.File, error) {
	return find(func(l, r string) bool { return r == remote.String() && (skip == nil || l != skip.String()) })
}

// Local returns a connected socket in this process whose local address is
// local: on a server, the one connection a listener on local accepted.
func Local(local net.Addr) (*os.File, error) {
	return find(func(l, _ string) bool { return l == local.String() })
}

func find(match func(local, remote string) bool) (*os.File, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if link, _ := os.Readlink("/proc/self/fd/" + e.Name()); !strings.HasPrefix(link, "socket:") {
			continue
		}
		l, err1 := unix.Getsockname(fd)
		r, err2 := unix.Getpeername(fd)
		if err1 != nil || err2 != nil || !match(addrString(l), addrString(r)) {
			continue
		}
		dup, err := unix.Dup(fd)
		if err != nil {
			return nil, os.NewSyscallError("dup", err)
		}
		return os.NewFile(uintptr(dup), "socket "+addrString(l)+" "+addrString(r)), nil
	}
	return nil, fmt.Errorf("sockfind: no socket matches")
}

func addrString(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}).String()
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}).String()
	}
	return ""
}

// Read returns what the kernel holds on the socket whose local address is
// local and whose peer is remote.
func Read(local, remote net.Addr) (tuning.Config, error) {
	return read(Conn(local, remote))
}

// ReadPeer returns what the kernel holds on the socket whose peer is
// remote, other than skip.
func ReadPeer(remote, skip net.Addr) (tuning.Config, error) {
	return read(Peer(remote, skip))
}

func read(f *os.File, err error) (tuning.Config, error) {
	if err != nil {
		return tuning.Config{}, err
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return tuning.Config{}, err
	}
	return tuning.ReadRawConn(rc)
}
