package tuning

import (
	"runtime"
	"syscall"

	"github.com/ghostsock/ghostsock/internal/sockopt"
)

// guardSupported: the guard needs TCP_INFO and Linux's zero-window rules.
const guardSupported = runtime.GOOS == "linux"

// snapshotFD reads fd's TCP_INFO, and SIOCOUTQ for the bytes written and
// not yet acknowledged.
func snapshotFD(fd uintptr) (Snapshot, error) {
	info, err := sockopt.ReadInfo(fd)
	if err != nil {
		return Snapshot{}, err
	}
	outq, err := sockopt.OutQueue(fd)
	if err != nil {
		return Snapshot{}, err
	}
	return fromInfo(info, outq), nil
}

// fromInfo fills a Snapshot's liveness fields from a TCP_INFO record and
// the bytes queued to send.
func fromInfo(i sockopt.Info, queued uint32) Snapshot {
	return Snapshot{
		State:             TCPState(i.State),
		RTT:               i.RTT,
		RTTVar:            i.RTTVar,
		RTO:               i.RTO,
		UnackedSegments:   i.Unacked,
		UnackedBytes:      i.UnackedBytes(queued),
		NotSentBytes:      i.NotSent,
		Retransmits:       i.Retransmits,
		Probes:            i.Probes,
		Backoff:           i.Backoff,
		SinceDataSent:     i.SinceDataSent,
		SinceDataReceived: i.SinceDataRecv,
		SinceACK:          i.SinceACK,
		PeerWindow:        i.PeerWindow,
	}
}

// sampleWindow reads what a guard tick and the send hold need from
// TCP_INFO.
func sampleWindow(rc syscall.RawConn) (windowSample, error) {
	var s windowSample
	err := sockopt.Control(rc, func(fd uintptr) error {
		info, err := sockopt.ReadInfo(fd)
		if err != nil {
			return err
		}
		s = windowSample{
			closed:      info.State == sockopt.StateClose,
			unacked:     info.Unacked,
			notsent:     info.NotSent,
			probes:      info.Probes,
			backoff:     info.Backoff,
			sinceAck:    info.SinceACK,
			bytesAcked:  info.BytesAcked,
			retransmits: info.Retransmits,
			rto:         info.RTO,
		}
		return nil
	})
	return s, err
}
