package lab

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Counters are what the kernel counted on one end of the veth pair: every
// packet between the two hosts passes there, so they count the wire, not an
// estimate. A drop is a packet the kernel discarded at that end: RxDropped
// on arrival (most often the receiving CPU's input backlog,
// net.core.netdev_max_backlog, being full), TxDropped on sending.
type Counters struct {
	RxBytes, RxPackets uint64 // from the other host
	TxBytes, TxPackets uint64 // to the other host
	RxDropped          uint64 // arriving from the other host, dropped here
	TxDropped          uint64 // leaving for the other host, dropped here
}

// Sub returns c minus an earlier reading.
func (c Counters) Sub(earlier Counters) Counters {
	return Counters{
		RxBytes: c.RxBytes - earlier.RxBytes, RxPackets: c.RxPackets - earlier.RxPackets,
		TxBytes: c.TxBytes - earlier.TxBytes, TxPackets: c.TxPackets - earlier.TxPackets,
		RxDropped: c.RxDropped - earlier.RxDropped, TxDropped: c.TxDropped - earlier.TxDropped,
	}
}

// Counters reads the client end's counters from /proc/thread-self/net/dev:
// this thread is never the server host's (/proc/self/net follows the main
// thread, which may be; sysfs would show the namespace it was mounted in).
func (l *Lab) Counters() (Counters, error) { return devCounters(l.link) }

// ServerCounters reads the server end's counters, from a thread in the
// server host.
func (l *Lab) ServerCounters() (c Counters, err error) {
	if l.path != nil {
		return Counters{}, fmt.Errorf("lab: ServerCounters reads a veth pair's server end; a Path lab has PathStats")
	}
	l.InServer(func() { c, err = devCounters(l.serverLink()) })
	return c, err
}

// devCounters reads one device's counters as this thread's network
// namespace sees them.
func devCounters(dev string) (Counters, error) {
	f, err := os.Open("/proc/thread-self/net/dev")
	if err != nil {
		return Counters{}, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		// receive: bytes packets errs drop fifo frame compressed multicast,
		// then transmit: bytes packets errs drop ...
		f := strings.Fields(rest)
		if len(f) < 12 {
			break
		}
		var n [6]uint64
		for i, col := range []int{0, 1, 8, 9, 3, 11} {
			if n[i], err = strconv.ParseUint(f[col], 10, 64); err != nil {
				return Counters{}, fmt.Errorf("lab: /proc/net/dev: %w", err)
			}
		}
		return Counters{RxBytes: n[0], RxPackets: n[1], TxBytes: n[2], TxPackets: n[3], RxDropped: n[4], TxDropped: n[5]}, nil
	}
	if err := s.Err(); err != nil {
		return Counters{}, fmt.Errorf("lab: /proc/net/dev: %w", err)
	}
	return Counters{}, fmt.Errorf("lab: %s not in /proc/thread-self/net/dev", dev)
}
