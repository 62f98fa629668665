package tuning

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// snapshotFD reads fd's TCP_INFO, and SIOCOUTQ for the bytes written and
// not yet acknowledged, of which the not-yet-sent are TCP_INFO's.
func snapshotFD(fd uintptr) (Snapshot, error) {
	info, err := tcpInfo(fd)
	if err != nil {
		return Snapshot{}, err
	}
	outq, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	if err != nil {
		return Snapshot{}, os.NewSyscallError("ioctl SIOCOUTQ", err)
	}
	s := fromTCPInfo(info)
	if q := uint32(outq); q > s.NotSentBytes {
		s.UnackedBytes = q - s.NotSentBytes
	}
	return s, nil
}

// tcpInfo reads fd's TCP_INFO (tcp(7)): the one place that does, for
// Inspect, the Observer and the guard's ticks.
func tcpInfo(fd uintptr) (*unix.TCPInfo, error) {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return nil, os.NewSyscallError("getsockopt TCP_INFO", err)
	}
	return info, nil
}

// fromTCPInfo fills a Snapshot's liveness fields from a TCP_INFO record.
func fromTCPInfo(info *unix.TCPInfo) Snapshot {
	ms := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
	us := func(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }
	return Snapshot{
		State:             TCPState(info.State),
		RTT:               us(info.Rtt),
		RTTVar:            us(info.Rttvar),
		RTO:               us(info.Rto),
		UnackedSegments:   info.Unacked,
		NotSentBytes:      info.Notsent_bytes,
		Retransmits:       info.Retransmits,
		Probes:            info.Probes,
		Backoff:           info.Backoff,
		SinceDataSent:     ms(info.Last_data_sent),
		SinceDataReceived: ms(info.Last_data_recv),
		SinceACK:          ms(info.Last_ack_recv),
		PeerWindow:        info.Snd_wnd,
	}
}

// socketError reads and clears the error the kernel holds for fd
// (SO_ERROR): nil if none, else the errno wrapped as a syscall error.
func socketError(fd uintptr) (error, error) {
	v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return nil, os.NewSyscallError("getsockopt SO_ERROR", err)
	}
	if v == 0 {
		return nil, nil
	}
	return os.NewSyscallError("read", unix.Errno(v)), nil
}
