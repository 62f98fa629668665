package tuning

import (
	"errors"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const guardSupported = true

// sampleWindow reads what a guard tick and the send hold need from
// TCP_INFO (tcp(7)).
func sampleWindow(rc syscall.RawConn) (windowSample, error) {
	var s windowSample
	err := rawControl(rc, func(fd uintptr) error {
		info, err := tcpInfo(fd)
		if err != nil {
			return err
		}
		s = windowSample{
			closed:      TCPState(info.State) == TCPClosed,
			unacked:     info.Unacked,
			notsent:     info.Notsent_bytes,
			probes:      info.Probes,
			backoff:     info.Backoff,
			sinceAck:    time.Duration(info.Last_ack_recv) * time.Millisecond,
			bytesAcked:  info.Bytes_acked,
			retransmits: info.Retransmits,
			rto:         time.Duration(info.Rto) * time.Microsecond,
		}
		return nil
	})
	return s, err
}

// setUserTimeout sets TCP_USER_TIMEOUT alone, as the guard moves it.
func setUserTimeout(rc syscall.RawConn, d time.Duration) error {
	return setMillis(rc, platform.userTimeout, d)
}

// setRTOMax sets TCP_RTO_MAX_MS alone, for the guard; a kernel before 6.15
// answers an error wrapping ENOPROTOOPT.
func setRTOMax(rc syscall.RawConn, d time.Duration) error { return setMillis(rc, platform.rtoMax, d) }

func setMillis(rc syscall.RawConn, opt *sockopt, d time.Duration) error {
	ms := int(d / time.Millisecond)
	return rawControl(rc, func(fd uintptr) error { return setInt(fd, opt, ms) })
}

// sourceWait waits, outside the guard's bracket, until the socket behind
// rc has data to read or has ended, and reports how many bytes it holds
// (SIOCINQ): at most that many are copied next, so that a copy from it
// never waits for its source inside the bracket, where the guard would
// count it as a write in progress. 0 means its end, an error, or a source
// that is no socket (a pipe): the copy then goes on as it would without.
type sourceWait struct {
	rc    syscall.RawConn
	avail int
	peek  [1]byte
	ready func(fd uintptr) bool // made once: a closure per wait would allocate
}

func newSourceWait(rc syscall.RawConn) *sourceWait {
	w := &sourceWait{rc: rc}
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

func (w *sourceWait) await() int {
	w.avail = 0
	if w.rc.Read(w.ready) != nil {
		return 0 // a deadline: the copy reports it
	}
	return w.avail
}
