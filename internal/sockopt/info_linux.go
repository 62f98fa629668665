package sockopt

import (
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// TCPInfo reports that this platform has Linux's TCP_INFO (and its
// zero-window rules): Linux and Android.
const TCPInfo = true

// Decode is the one decoder of a TCP_INFO record, whether getsockopt or
// sock_diag gave it.
func Decode(t *unix.TCPInfo) Info {
	ms := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
	us := func(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }
	return Info{
		State:         t.State,
		RTT:           us(t.Rtt),
		RTTVar:        us(t.Rttvar),
		RTO:           us(t.Rto),
		Unacked:       t.Unacked,
		NotSent:       t.Notsent_bytes,
		Retransmits:   t.Retransmits,
		Probes:        t.Probes,
		Backoff:       t.Backoff,
		SinceDataSent: ms(t.Last_data_sent),
		SinceDataRecv: ms(t.Last_data_recv),
		SinceACK:      ms(t.Last_ack_recv),
		PeerWindow:    t.Snd_wnd,
		BytesAcked:    t.Bytes_acked,
	}
}

// ReadInfo reads fd's TCP_INFO.
func ReadInfo(fd uintptr) (Info, error) {
	t, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return Info{}, os.NewSyscallError("getsockopt TCP_INFO", err)
	}
	return Decode(t), nil
}

// OutQueue is SIOCOUTQ: the bytes written to fd and not yet acknowledged.
func OutQueue(fd uintptr) (uint32, error) {
	n, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	if err != nil {
		return 0, os.NewSyscallError("ioctl SIOCOUTQ", err)
	}
	return uint32(n), nil
}

// SocketError reads and clears the error the kernel holds for fd
// (SO_ERROR): nil if none, else the errno wrapped as a syscall error.
func SocketError(fd uintptr) (error, error) {
	v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return nil, os.NewSyscallError("getsockopt SO_ERROR", err)
	}
	if v == 0 {
		return nil, nil
	}
	return os.NewSyscallError("read", unix.Errno(v)), nil
}

// SourceWait waits until the socket behind a copy's source has data to
// read or has ended, and reports how many bytes it holds (SIOCINQ), so
// that a copy takes no more than that and never waits for its source
// while it writes. 0 means its end, an error, or a source that is no
// socket (a pipe): the copy then goes on as it would without.
type SourceWait struct {
	rc    syscall.RawConn
	avail int
	peek  [1]byte
	ready func(fd uintptr) bool // made once: a closure per wait would allocate
}

// NewSourceWait returns a SourceWait for the source behind rc.
func NewSourceWait(rc syscall.RawConn) *SourceWait {
	w := &SourceWait{rc: rc}
	w.ready = func(fd uintptr) bool {
		n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		if err != nil || n > 0 {
			w.avail = max(n, 0)
			return true
		}
		_, _, err = unix.Recvfrom(int(fd), w.peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return !errors.Is(err, unix.EAGAIN) // its end or an error: the copy reports it
	}
	return w
}

// Await waits for the source and returns the bytes it holds.
func (w *SourceWait) Await() int {
	w.avail = 0
	if w.rc.Read(w.ready) != nil {
		return 0 // a deadline: the copy reports it
	}
	return w.avail
}
