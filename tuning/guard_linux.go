package tuning

import (
	"syscall"
	"time"
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
