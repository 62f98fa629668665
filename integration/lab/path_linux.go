package lab

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A Path lab joins the client and server hosts with a link in user space
// instead of a veth pair: a TUN device on each host, and this process
// carrying every packet between them, delayed, jittered, dropped at
// random, rate limited behind a queue that can bloat, blackholed in either
// direction, or forgotten by a middlebox, as a phone's path through a
// cellular network and a cloud load balancer does to it. This kernel has
// no netem; a TUN device works inside a network namespace, so the link is
// the lab's own code, and what it does is what Shape says.

// Direction names one way along a Path.
type Direction int

const (
	Up   Direction = iota // client to server
	Down                  // server to client
)

func (d Direction) String() string { return [...]string{"up", "down"}[d] }

// Shape is what one direction of a Path does to the packets it carries,
// in this order: a random loss, the rate limit's queue (a packet that
// would wait longer than Queue is dropped), the line at Rate, then Delay
// and a random extra of up to Jitter. Packets keep their order.
type Shape struct {
	Delay  time.Duration // one way, before jitter
	Jitter time.Duration // each packet up to this much later again, uniformly at random
	Loss   float64       // the share of packets dropped at random, 0 to 1
	Rate   int64         // bytes a second; 0 for no limit (and no queue)
	Queue  time.Duration // the longest a packet waits for the line; 0 means 100 ms
}

// Middlebox is a device on the path that keeps a flow table, as a NAT, a
// firewall or a cloud load balancer does: a TCP flow idle (no packet
// either way) for IdleLimit is forgotten, and the next packet of a flow it
// does not know, other than a SYN, is dropped or, with Reset, answered with
// an RST to its sender (AWS's NLB answers with resets; Azure's and
// Google's balancers and most NATs drop).
type Middlebox struct {
	IdleLimit time.Duration // 0: no middlebox
	Reset     bool
}

// Path is the link a Path lab has.
type Path struct {
	Up, Down  Shape
	Middlebox Middlebox
}

// RTT is the round trip the path adds without jitter or queueing.
func (p Path) RTT() time.Duration { return p.Up.Delay + p.Down.Delay }

// LongestRTT is the longest round trip a connection sees on p: its delay
// and jitter both ways, and 30 ms for the hosts' stacks and this process's
// scheduling of the link. It is the rtt to give tuning.ForBudgetOnPath.
func (p Path) LongestRTT() time.Duration {
	return p.RTT() + p.Up.Jitter + p.Down.Jitter + 30*time.Millisecond
}

// Phone returns a symmetric path with round trip rtt and a tenth of it as
// jitter (each way, a twentieth), the cellular paths the kit's users
// reach phones over.
func Phone(rtt time.Duration) Path {
	s := Shape{Delay: rtt / 2, Jitter: rtt / 20}
	return Path{Up: s, Down: s}
}

// PathStats counts what the link did, per direction.
type PathStats struct {
	Delivered, Lost, QueueDrops, Blackholed, Forgotten, Resets [2]uint64
}

// NewPath builds a lab whose two hosts are joined by a link with path's
// shape (see Path). The hosts' addresses are from 198.19.0.0/16 and
// fd00:6874::/32; everything else (Listen, Vanish, Restore, TCPPair) is as
// for New.
func NewPath(path Path) (*Lab, error) {
	l, n, err := newLab(19, 0x6874, "t")
	if err != nil {
		return nil, err
	}
	lk := &pathLink{done: make(chan struct{}), flows: map[flowKey]time.Time{}}
	lk.path.Store(&path)
	l.path = lk
	peer := fmt.Sprintf("gs%du", n)
	if lk.tun[Up], err = openTUN(l.link); err != nil {
		l.Close()
		return nil, err
	}
	l.InServer(func() { lk.tun[Down], err = openTUN(peer) })
	if err != nil {
		l.Close()
		return nil, err
	}
	net4 := netip.PrefixFrom(l.ClientAddr, 24).Masked().String()
	net6 := netip.PrefixFrom(l.ClientAddr6, 64).Masked().String()
	if err := l.run([]step{
		{Client, "link set lo up"},
		{Server, "link set lo up"},
		{Client, fmt.Sprintf("addr add %s/32 dev %s", l.ClientAddr, l.link)},
		{Client, fmt.Sprintf("addr add %s/128 dev %s nodad", l.ClientAddr6, l.link)},
		{Server, fmt.Sprintf("addr add %s/32 dev %s", l.ServerAddr, peer)},
		{Server, fmt.Sprintf("addr add %s/128 dev %s nodad", l.ServerAddr6, peer)},
		{Client, "link set " + l.link + " up"},
		{Server, "link set " + peer + " up"},
		{Client, fmt.Sprintf("route add %s dev %s", net4, l.link)},
		{Client, fmt.Sprintf("route add %s dev %s", net6, l.link)},
		{Server, fmt.Sprintf("route add %s dev %s", net4, peer)},
		{Server, fmt.Sprintf("route add %s dev %s", net6, peer)},
	}); err != nil {
		l.Close()
		return nil, err
	}
	lk.start()
	return l, nil
}

// SetPath changes the path's shape from now on: a handover, a path that
// turns lossy. Packets already on their way keep the times they had.
func (l *Lab) SetPath(path Path) error {
	if l.path == nil {
		return fmt.Errorf("lab: SetPath on a lab without a Path (use NewPath)")
	}
	l.path.path.Store(&path)
	return nil
}

// Blackhole drops every packet going dir on a Path lab, from now until it
// is called with false: the link, not either host, loses them, so neither
// kernel learns anything (Vanish does it with routes on one host).
func (l *Lab) Blackhole(dir Direction, on bool) error {
	if l.path == nil {
		return fmt.Errorf("lab: Blackhole on a lab without a Path (use NewPath, or Vanish)")
	}
	l.path.blackholed[dir].Store(on)
	return nil
}

// PathStats reports what a Path lab's link has done so far.
func (l *Lab) PathStats() PathStats {
	var s PathStats
	if l.path == nil {
		return s
	}
	for d := range 2 {
		c := &l.path.count[d]
		s.Delivered[d], s.Lost[d], s.QueueDrops[d] = c.delivered.Load(), c.lost.Load(), c.queueDrops.Load()
		s.Blackholed[d], s.Forgotten[d], s.Resets[d] = c.blackholed.Load(), c.forgotten.Load(), c.resets.Load()
	}
	return s
}

// openTUN makes a TUN device named name in the calling thread's network
// namespace, carrying bare IP packets, and returns its descriptor in
// non-blocking mode, so that Close ends a Read in progress.
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("lab: open /dev/net/tun (modprobe tun): %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lab: TUN %s: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lab: TUNSETIFF %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "tun "+name), nil
}

// pathLink is a Path lab's link: a reader and a deliverer per direction.
type pathLink struct {
	tun        [2]*os.File // the client's (read for Up), the server's (read for Down)
	path       atomic.Pointer[Path]
	blackholed [2]atomic.Bool
	count      [2]linkCounters
	done       chan struct{}
	wg         sync.WaitGroup

	mu    sync.Mutex // the middlebox's flow table
	flows map[flowKey]time.Time
}

type linkCounters struct {
	delivered, lost, queueDrops, blackholed, forgotten, resets atomic.Uint64
}

// packet is one IP packet on its way, due at the far end at due.
type packet struct {
	b   []byte
	due time.Time
}

func (lk *pathLink) start() {
	for d := range 2 {
		q := make(chan packet, 1<<14)
		lk.wg.Add(2)
		go lk.carry(Direction(d), q)
		go lk.deliver(Direction(d), q)
	}
}

// close ends the link: the TUN devices go with their descriptors.
func (lk *pathLink) close() {
	close(lk.done)
	for _, f := range lk.tun {
		if f != nil {
			f.Close()
		}
	}
	lk.wg.Wait()
}

// carry reads what d's sending host sends and decides each packet's fate.
func (lk *pathLink) carry(d Direction, q chan<- packet) {
	defer lk.wg.Done()
	defer close(q)
	from := lk.tun[d]
	if from == nil {
		return
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(d)))
	c := &lk.count[d]
	var free, last time.Time // when the line is free; the last packet's due time
	buf := make([]byte, 1<<16)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return // closed
		}
		now := time.Now()
		p := lk.path.Load()
		s := p.Up
		if d == Down {
			s = p.Down
		}
		if lk.blackholed[d].Load() {
			c.blackholed.Add(1)
			continue
		}
		if rst, pass := lk.middlebox(p.Middlebox, buf[:n], now); !pass {
			c.forgotten.Add(1)
			if rst != nil {
				c.resets.Add(1)
				from.Write(rst) // back to the sender
			}
			continue
		}
		if s.Loss > 0 && rng.Float64() < s.Loss {
			c.lost.Add(1)
			continue
		}
		start := now
		if s.Rate > 0 {
			start = later(now, free)
			queue := s.Queue
			if queue == 0 {
				queue = 100 * time.Millisecond
			}
			if start.Sub(now) > queue {
				c.queueDrops.Add(1)
				continue
			}
			free = start.Add(time.Duration(int64(n) * int64(time.Second) / s.Rate))
			start = free
		}
		due := start.Add(s.Delay)
		if s.Jitter > 0 {
			due = due.Add(time.Duration(rng.Int64N(int64(s.Jitter) + 1)))
		}
		due = later(due, last)
		last = due
		select {
		case q <- packet{append([]byte(nil), buf[:n]...), due}:
		default:
			c.queueDrops.Add(1) // more than the link can hold at once
		}
	}
}

// deliver hands each packet to the far host when it is due.
func (lk *pathLink) deliver(d Direction, q <-chan packet) {
	defer lk.wg.Done()
	to := lk.tun[1-d]
	wake := time.NewTimer(0) // one timer for every packet's wait
	defer wake.Stop()
	for p := range q {
		if wait := time.Until(p.due); wait > 0 {
			wake.Reset(wait)
			select {
			case <-wake.C:
			case <-lk.done:
				return
			}
		}
		if to == nil {
			continue
		}
		if _, err := to.Write(p.b); err != nil {
			select {
			case <-lk.done:
				return
			default:
			}
			continue // the host dropped it (its queue, a route): as a wire would
		}
		lk.count[d].delivered.Add(1)
	}
}

// middlebox applies m's flow table to packet b at now: pass is false for a
// packet of a flow m does not know (never saw its SYN, or forgot it), and
// rst, if m resets, is the answer to send back.
func (lk *pathLink) middlebox(m Middlebox, b []byte, now time.Time) (rst []byte, pass bool) {
	if m.IdleLimit <= 0 {
		return nil, true
	}
	s, ok := parseTCP(b)
	if !ok {
		return nil, true
	}
	k := s.flow()
	lk.mu.Lock()
	defer lk.mu.Unlock()
	seen, known := lk.flows[k]
	switch {
	case s.flags&tcpSYN != 0 && s.flags&tcpACK == 0:
		lk.flows[k] = now // a new flow
		return nil, true
	case known && now.Sub(seen) <= m.IdleLimit:
		lk.flows[k] = now
		return nil, true
	}
	delete(lk.flows, k) // forgotten: it stays unknown
	if m.Reset && s.flags&tcpRST == 0 {
		return s.reset(), false
	}
	return nil, false
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
