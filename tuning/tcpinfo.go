package tuning

import (
	"runtime"

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
