package lab

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Counters are what the kernel counted on the client host's end of the veth
// pair: every packet between the two hosts passes there, so they count the
// wire, not an estimate.
type Counters struct {
	RxBytes, RxPackets uint64 // from the server host
	TxBytes, TxPackets uint64 // to the server host
}

// Sub returns c minus an earlier reading.
func (c Counters) Sub(earlier Counters) Counters {
	return Counters{
		RxBytes: c.RxBytes - earlier.RxBytes, RxPackets: c.RxPackets - earlier.RxPackets,
		TxBytes: c.TxBytes - earlier.TxBytes, TxPackets: c.TxPackets - earlier.TxPackets,
	}
}

// Counters reads the client end's counters from /proc/thread-self/net/dev:
// this thread is never the server host's (/proc/self/net follows the main
// thread, which may be; sysfs would show the namespace it was mounted in).
func (l *Lab) Counters() (Counters, error) {
	f, err := os.Open("/proc/thread-self/net/dev")
	if err != nil {
		return Counters{}, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || strings.TrimSpace(name) != l.link {
			continue
		}
		// receive: bytes packets errs drop fifo frame compressed multicast,
		// then transmit: bytes packets ...
		f := strings.Fields(rest)
		if len(f) < 10 {
			break
		}
		var n [4]uint64
		for i, col := range []int{0, 1, 8, 9} {
			if n[i], err = strconv.ParseUint(f[col], 10, 64); err != nil {
				return Counters{}, fmt.Errorf("lab: /proc/net/dev: %w", err)
			}
		}
		return Counters{RxBytes: n[0], RxPackets: n[1], TxBytes: n[2], TxPackets: n[3]}, nil
	}
	if err := s.Err(); err != nil {
		return Counters{}, fmt.Errorf("lab: /proc/net/dev: %w", err)
	}
	return Counters{}, fmt.Errorf("lab: %s not in /proc/thread-self/net/dev", l.link)
}
