package sockopt

import (
	"syscall"
	"time"
)

// Info is the part of a TCP_INFO record (tcp(7)) the kit reads, decoded
// from the kernel's units (microseconds, milliseconds) once, by Decode.
type Info struct {
	State            uint8 // the kernel's TCP state (TCP_ESTABLISHED is 1)
	RTT, RTTVar, RTO time.Duration
	Unacked          uint32 // segments sent and not acknowledged (packets_out)
	NotSent          uint32 // bytes queued and not yet sent
	Retransmits      uint8  // RTO retransmissions since the last ACK (icsk_retransmits)
	Probes           uint8  // zero-window or keepalive probes unanswered
	Backoff          uint8  // doublings of the RTO or probe timer not yet undone
	SinceDataSent    time.Duration
	SinceDataRecv    time.Duration
	SinceACK         time.Duration // since the peer's last ACK (rcv_tstamp)
	PeerWindow       uint32
	BytesAcked       uint64 // bytes the peer has acknowledged, ever
}

// StateClose is TCP_CLOSE: the kernel has ended the connection.
const StateClose = 7

// UnackedBytes is how many of queued, the bytes written and not yet
// acknowledged (SIOCOUTQ, or sock_diag's idiag_wqueue), have been sent.
func (i Info) UnackedBytes(queued uint32) uint32 {
	if queued > i.NotSent {
		return queued - i.NotSent
	}
	return 0
}

// Closed reports TCP_CLOSE: the kernel has ended the connection.
func (i Info) Closed() bool { return i.State == StateClose }

// Shut reports the kernel's zero-window probing condition: data queued,
// nothing in flight (tcp_probe_timer runs exactly then).
func (i Info) Shut() bool { return i.Unacked == 0 && i.NotSent > 0 }

// Empty reports that nothing is queued or in flight.
func (i Info) Empty() bool { return i.Unacked == 0 && i.NotSent == 0 }

// Sample reads the TCP_INFO of the socket behind rc.
func Sample(rc syscall.RawConn) (Info, error) {
	var i Info
	err := Control(rc, func(fd uintptr) (err error) {
		i, err = ReadInfo(fd)
		return err
	})
	return i, err
}
