package reclaim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ghostsock/ghostsock/internal/census"
)

// ErrNotPermitted is wrapped by Destroy's error when this process may not
// destroy sockets: SOCK_DESTROY needs CAP_NET_ADMIN in the user namespace
// that owns the socket's network namespace.
var ErrNotPermitted = errors.New("reclaim: ending a socket needs CAP_NET_ADMIN (run as root)")

// ErrGone is wrapped by Destroy's error when no socket has those
// addresses and that cookie any more: it ended, or another socket took its
// addresses since the census (the kernel checks the cookie: ESTALE).
var ErrGone = errors.New("reclaim: the socket is gone")

// sockDestroy is SOCK_DESTROY, linux/sock_diag.h.
const sockDestroy = 21

// inetDiagReqV2 is struct inet_diag_req_v2 (linux/inet_diag.h): family,
// protocol, extensions, pad, states, then struct inet_diag_sockid (ports
// and addresses in network order, interface, cookie).
type inetDiagReqV2 struct {
	Family, Protocol, Ext, Pad uint8
	States                     uint32
	SPort, DPort               [2]byte
	Src, Dst                   [16]byte
	If                         uint32
	Cookie                     [2]uint32
}

// Destroy ends the TCP socket with these addresses, this sock_diag cookie
// and this interface (0: bound to none), as ss -K does, through SOCK_DESTROY in the calling thread's
// network namespace: the kernel sends the peer a RST, moves the socket to
// CLOSE and reports ECONNABORTED to the process holding it at its next
// read, write or poll, so that the process frees it. The cookie keeps a
// socket that took the same addresses since the census from being ended
// in its place.
func Destroy(local, remote netip.AddrPort, cookie uint64, ifindex uint32) error {
	req := inetDiagReqV2{Protocol: unix.IPPROTO_TCP, If: ifindex, Cookie: [2]uint32{uint32(cookie), uint32(cookie >> 32)}}
	l, r := local.Addr().Unmap(), remote.Addr().Unmap()
	switch {
	case l.Is4() && r.Is4():
		// A dual-stack socket's v4-mapped connection is found by its
		// IPv4 addresses too (inet_diag_find_one_icsk).
		req.Family = unix.AF_INET
		a, b := l.As4(), r.As4()
		copy(req.Src[:], a[:])
		copy(req.Dst[:], b[:])
	case l.Is6() && r.Is6():
		req.Family = unix.AF_INET6
		req.Src, req.Dst = l.As16(), r.As16()
	default:
		return fmt.Errorf("reclaim: destroy %v - %v: mixed address families", local, remote)
	}
	binary.BigEndian.PutUint16(req.SPort[:], local.Port())
	binary.BigEndian.PutUint16(req.DPort[:], remote.Port())
	err := netlinkCall(sockDestroy, unsafe.Slice((*byte)(unsafe.Pointer(&req)), unsafe.Sizeof(req)))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("destroy %v - %v: %w: %w", local, remote, ErrNotPermitted, err)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ESTALE):
		return fmt.Errorf("destroy %v - %v: %w: %w", local, remote, ErrGone, err)
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("destroy %v - %v: %w: %w", local, remote, ErrCannotDestroy, err)
	}
	return fmt.Errorf("destroy %v - %v: %w", local, remote, err)
}

// DestroySocket is Destroy for a census connection.
func DestroySocket(conn *census.Conn) error {
	return Destroy(conn.Local, conn.Remote, conn.Cookie, conn.Interface)
}

// ErrCannotDestroy is wrapped by Destroy's error on a kernel built without
// CONFIG_INET_DIAG_DESTROY: no socket can be ended.
var ErrCannotDestroy = errors.New("reclaim: this kernel cannot end sockets (built without CONFIG_INET_DIAG_DESTROY)")

// The request is struct inet_diag_req_v2, 56 bytes.
var _ [56]byte = [unsafe.Sizeof(inetDiagReqV2{})]byte{}

// netlinkCall sends one NETLINK_SOCK_DIAG request of type typ with payload
// and waits for its acknowledgement, returning the kernel's error.
func netlinkCall(typ uint16, payload []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("bind", err)
	}
	tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	const seq = 1
	msg := make([]byte, unix.NLMSG_HDRLEN+len(payload))
	hdr := (*unix.NlMsghdr)(unsafe.Pointer(&msg[0]))
	*hdr = unix.NlMsghdr{Len: uint32(len(msg)), Type: typ, Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK, Seq: seq}
	copy(msg[unix.NLMSG_HDRLEN:], payload)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("sendto", err)
	}
	buf := make([]byte, 4096)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return os.NewSyscallError("recvfrom", err)
		}
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue // not the kernel's
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("reclaim: netlink answer: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return errors.New("reclaim: netlink answer: short error message")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
				return os.NewSyscallError("SOCK_DESTROY", unix.Errno(-code))
			}
			return nil
		}
	}
}
