// Package census lists the TCP connections of the current network
// namespace through the kernel's sock_diag interface and judges each with
// tuning.Snapshot's rules: the engine of the ghostscan command.
package census

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ghostsock/ghostsock/internal/netns"
	"github.com/ghostsock/ghostsock/internal/procsock"
	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning"
)

// Filter picks connections. Zero values pick everything.
type Filter struct {
	Port int          // local or remote port (a listening socket's local port), as ss's sport or dport
	PID  int          // a process holding the socket, among all that do
	Peer netip.Prefix // the remote address is in it
}

// Options are what a scan does beyond listing.
type Options struct {
	Filter
	// Settings reads the user timeout and keepalive options of each
	// socket from the process holding it (pidfd_getfd, Linux 5.6+): as
	// root, or as the same user where ptrace is allowed. Where it cannot,
	// or where the duplicate would re-tag the socket's cgroup class
	// (procsock.Retags), the connection is judged on what sock_diag gives
	// and the kernel's defaults, and says so.
	Settings bool
}

// Conn is one connection and its verdict.
type Conn struct {
	Local, Remote netip.AddrPort
	Listener      *netip.AddrPort `json:",omitempty"` // the listening socket it was accepted on
	// PID and Process name the holder the actions go through (the one the
	// filter's PID names, or the first found); Holders are all of them,
	// as ss -p lists them.
	PID      int             `json:",omitempty"`
	Process  string          `json:",omitempty"`
	Holders  []Holder        `json:",omitempty"`
	Snapshot tuning.Snapshot // in JSON with every duration in ms (see MarshalJSON)
	Verdict  tuning.Verdict
	EndsIn   Duration // Never is -1 in JSON, "never" in text
	// SlowPath: the connection's path is slower than the LAN that a
	// Config's bounds assume unless its PathRTO says otherwise (a census
	// cannot read PathRTO, so LANRTOMax): its RTO, as Snapshot.BaseRTO
	// gives it, is past LANRTOMax. EndsIn counts with its own RTO all the
	// same; a ForBudget Config's Bounds do not hold for it (see
	// tuning.ForBudgetOnPath).
	SlowPath bool
	// Timer is the kernel timer pending (sock_diag idiag_timer): "on"
	// (retransmission), "keepalive", "probe0" (zero window) or "off".
	Timer string
	// Settings says where Snapshot.Options came from: "read" from the
	// socket, or why not and what was assumed.
	Settings string
	Socket
}

// Socket names one socket for the actions that change it (ghostscan
// -reap and -harden): its inode, the sock_diag cookie the kernel gave it
// (a destroy by cookie cannot end another socket that took the same
// addresses since), the interface it is bound to (0: none; sock_diag
// finds a socket bound to a device, by SO_BINDTODEVICE, a VRF or an IPv6
// link-local address, only with it), and a descriptor of process PID that
// holds it (0 with no PID).
type Socket struct {
	Inode     uint32 `json:",omitempty"`
	Cookie    uint64 `json:",omitempty"`
	Interface uint32 `json:",omitempty"`
	FD        int    `json:",omitempty"`
}

// Holder is a process that holds a socket, and the descriptor it holds
// it as.
type Holder struct {
	PID     int
	Process string `json:",omitempty"`
	FD      int
}

// Holders is every process holding one socket.
type Holders []Holder

// String is the holders as ss -p names them: python3[812]:6,python3[813]:6.
func (hs Holders) String() string {
	if len(hs) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, h := range hs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s[%d]:%d", h.Process, h.PID, h.FD)
	}
	return b.String()
}

// Listener is a listening socket the filter picks (by its process or its
// port; none with a peer filter), with the options it holds: a
// connection it accepts later inherits them.
type Listener struct {
	Addr    netip.AddrPort
	PID     int      `json:",omitempty"`
	Process string   `json:",omitempty"`
	Holders []Holder `json:",omitempty"`
	Socket
	// Options are read from the socket, as a Conn's are; OptionsKnown
	// says whether they could be.
	Options      tuning.Config `json:"-"`
	OptionsKnown bool
}

// Group is the census of one listening socket, or of the connections this
// namespace dialed to one remote address.
type Group struct {
	Name        string // "listen 198.18.1.2:8080" or "dial 10.0.0.5:5432"
	Process     string `json:",omitempty"`
	Established int
	// CloseWait: connections whose peer closed and whose process has not
	// (CLOSE_WAIT), a leak of the process's, not a ghost: the kernel never
	// ends them. CloseWaitFor is the longest since the peer's last segment
	// (TCP_INFO's last-received clock), its FIN for most.
	CloseWait    int
	CloseWaitFor Duration `json:"CloseWaitForMs"`
	// Unwatched: idle with keepalive off. The kernel never ends them.
	Unwatched int
	// Retransmitting into silence: Suspected with data in flight;
	// SilentFor is the longest of their silences.
	Retransmitting int
	SilentFor      Duration `json:"SilentForMs"`
	// Stalled: data waits behind a window the peer keeps shut.
	Stalled int
	// Suspected: every suspected connection, idle ones included.
	Suspected int
	// NeverEnds: connections whose EndsIn is Never (Unwatched, or busy
	// with neither a user timeout nor tcp_retries2... in practice the
	// Unwatched). MaxEndsIn is the longest finite EndsIn.
	NeverEnds int
	MaxEndsIn Duration `json:"MaxEndsInMs"`
	// SettingsRead counts connections whose options were read, not
	// assumed.
	SettingsRead int
	// SlowPath counts connections on a path slower than a LAN (see
	// Conn.SlowPath).
	SlowPath int
}

// Census is one scan's result.
//
// In JSON every duration, here and in Group and Conn, is a number of
// milliseconds (see Duration) in a field whose name ends in Ms.
type Census struct {
	Took    Duration `json:"TookMs"`
	NetNS   uint64   // the network namespace's inode, as /proc/PID/ns/net shows it (net:[NetNS])
	Sockets int      // TCP sockets in the namespace, every state
	// Settings says why no socket's options were read, if none could be
	// (a duplicate would re-tag them: procsock.ErrRetags); empty otherwise.
	Settings string `json:",omitempty"`
	// FinWait2Orphans: sockets the filter picks that this namespace closed
	// and whose peer has not (FIN_WAIT2, held by no process); the kernel
	// ends each after net.ipv4.tcp_fin_timeout (60 s by default).
	FinWait2Orphans int
	Groups          []*Group
	Connections     []*Conn
	Listeners       []*Listener
}

// A census's JSON has one unit for every duration: milliseconds, as a
// JSON number that may have a fraction (a float64 to most readers), in a
// field whose name ends in Ms. Milliseconds because the kernel counts most
// of what is reported in them: TCP_INFO's tcpi_last_* clocks,
// TCP_USER_TIMEOUT and TCP_RTO_MAX_MS; a fraction because it counts the
// rest finer (RTT, RTTVar and RTO in microseconds) and a scan's own
// duration is measured in nanoseconds. Seconds would put most values
// behind a decimal point. Nanoseconds, as encoding/json writes a
// time.Duration, were the mix a user reported: they sat beside
// millisecond counts with nothing in the field names to tell them apart.
// tuning.Snapshot and tuning.Config hold time.Durations, so a Conn is
// written through view types of its own (json_linux.go), never as they
// are.

// Duration prints as Go durations do, and Never as "never". In JSON it is
// milliseconds, a number with up to six decimals (1.5 s is 1500, 62 µs is
// 0.062, 1 ns is 0.000001), and Never is -1; no duration a census reports
// is negative otherwise.
type Duration time.Duration

func (d Duration) String() string {
	if time.Duration(d) == tuning.Never {
		return "never"
	}
	return time.Duration(d).Round(time.Millisecond).String()
}

// MarshalJSON writes d in milliseconds: the exact decimal of its
// nanoseconds over a million, trailing zeros dropped. It never rounds, as
// a float64 would past 2^53 ns; a reader may still take it as a float64.
func (d Duration) MarshalJSON() ([]byte, error) {
	if time.Duration(d) == tuning.Never {
		return []byte("-1"), nil
	}
	var b []byte
	u := uint64(d)
	if d < 0 {
		b, u = append(b, '-'), -u
	}
	b = strconv.AppendUint(b, u/1e6, 10)
	if frac := u % 1e6; frac != 0 {
		digits := strconv.FormatUint(1e6+frac, 10)[1:] // six, leading zeros kept
		b = append(append(b, '.'), strings.TrimRight(digits, "0")...)
	}
	return b, nil
}

// UnmarshalJSON reads milliseconds, -1 for Never: what MarshalJSON wrote,
// exactly, and any other JSON number, rounded to the nanosecond. null
// leaves d as it is.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	ns, ok := parseMs(s)
	if !ok {
		ms, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("census: duration %s: %w", b, err)
		}
		f := math.Round(ms * 1e6)
		if f >= math.MaxInt64 || f <= math.MinInt64 {
			return fmt.Errorf("census: duration %s ms: out of range", b)
		}
		ns = time.Duration(f)
	}
	if ns == -time.Millisecond {
		ns = tuning.Never
	}
	*d = Duration(ns)
	return nil
}

// parseMs reads a decimal count of milliseconds with at most six
// decimals, exactly: ok is false for anything else (an exponent, more
// decimals, a value out of range).
func parseMs(s string) (_ time.Duration, ok bool) {
	s, neg := strings.CutPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 6 {
		return 0, false
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, false
	}
	var f uint64
	if frac != "" {
		if f, err = strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 64); err != nil {
			return 0, false
		}
	}
	if w > (math.MaxInt64-f)/1e6 {
		return 0, false
	}
	ns := time.Duration(w*1e6 + f)
	if neg {
		ns = -ns
	}
	return ns, true
}

// Scan takes a census of the calling thread's network namespace.
func Scan(o Options) (*Census, error) {
	start := time.Now()
	all, err := dumpTCP()
	if err != nil {
		return nil, err
	}
	owners, err := SocketHolders()
	if err != nil {
		return nil, err
	}
	ns, err := netns.Own()
	if err != nil {
		return nil, err
	}
	sc := &scanner{o: o, c: &Census{Sockets: len(all), NetNS: ns}, owners: owners,
		defaults: kernelDefaults(), listening: listening(all), procs: procsock.New(), zone: zoner()}
	defer sc.procs.Close()
	if err := sc.procs.Safe(); err != nil && o.Settings {
		sc.c.Settings = err.Error()
	}
	for _, r := range all {
		sc.add(r)
	}
	sc.c.group()
	sc.c.Took = Duration(time.Since(start))
	return sc.c, nil
}

// dumpTCP lists every TCP socket of the namespace, IPv4 and IPv6, with
// its TCP_INFO, through sock_diag.
func dumpTCP() ([]*netlink.InetDiagTCPInfoResp, error) {
	h, err := netlink.NewHandle(unix.NETLINK_INET_DIAG)
	if err != nil {
		return nil, fmt.Errorf("census: netlink: %w", err)
	}
	defer h.Close()
	var all []*netlink.InetDiagTCPInfoResp
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		r, err := h.SocketDiagTCPInfo(fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("census: sock_diag: %w", err)
		}
		all = append(all, r...)
	}
	return all, nil
}

// listening is the local address of every listening socket in all.
func listening(all []*netlink.InetDiagTCPInfoResp) map[netip.AddrPort]bool {
	listeners := map[netip.AddrPort]bool{}
	for _, r := range all {
		if r.InetDiagMsg.State == netlink.TCP_LISTEN {
			listeners[addrPort(r.InetDiagMsg.ID.Source, r.InetDiagMsg.ID.SourcePort)] = true
		}
	}
	return listeners
}

// scanner is one Scan at work: the census it fills and what it looked up
// once for every socket.
type scanner struct {
	o         Options
	c         *Census
	owners    map[uint32][]Holder
	defaults  tuning.Config // the kernel's, for a socket whose options are not read
	listening map[netip.AddrPort]bool
	procs     *procsock.Procs
	zone      func(netip.AddrPort, uint32) netip.AddrPort
}

// add adds the socket of r to the census if the filter picks it: a
// listening socket, or an established (or close-wait) connection.
func (sc *scanner) add(r *netlink.InetDiagTCPInfoResp) {
	m := r.InetDiagMsg
	switch {
	case m.State == netlink.TCP_LISTEN:
		if ln := sc.o.listener(r, sc.owners, sc.zone); ln != nil {
			if sc.o.Settings && ln.PID != 0 && sc.c.Settings == "" {
				var err error
				ln.Options, err = sc.read(Holder{PID: ln.PID, FD: ln.FD})
				ln.OptionsKnown = err == nil
			}
			sc.c.Listeners = append(sc.c.Listeners, ln)
		}
	case (m.State == netlink.TCP_ESTABLISHED || m.State == netlink.TCP_CLOSE_WAIT) && r.TCPInfo != nil:
		if conn := sc.conn(r); conn != nil {
			sc.c.Connections = append(sc.c.Connections, conn)
		}
	case m.State == netlink.TCP_FIN_WAIT2 && m.INode == 0:
		orphan := &Conn{Local: addrPort(m.ID.Source, m.ID.SourcePort), Remote: addrPort(m.ID.Destination, m.ID.DestinationPort)}
		if sc.o.pick(orphan) { // the filter's addresses and ports; no process holds it
			sc.c.FinWait2Orphans++
		}
	}
}

// conn is the connection of r judged, or nil if the filter leaves it.
func (sc *scanner) conn(r *netlink.InetDiagTCPInfoResp) *Conn {
	m := r.InetDiagMsg
	conn := &Conn{Local: sc.zone(addrPort(m.ID.Source, m.ID.SourcePort), m.ID.Interface),
		Remote: sc.zone(addrPort(m.ID.Destination, m.ID.DestinationPort), m.ID.Interface),
		Socket: Socket{Inode: m.INode, Cookie: cookie(m), Interface: m.ID.Interface}}
	conn.Holders = sc.owners[m.INode]
	if !sc.o.pick(conn) {
		return nil
	}
	if h, ok := sc.o.holder(conn.Holders); ok {
		conn.PID, conn.Process, conn.FD = h.PID, h.Process, h.FD
	}
	conn.Listener = sc.acceptedOn(conn.Local)
	conn.Timer = timerName(m.Timer)
	s := snapshot(r)
	sc.options(conn, &s, m)
	conn.Snapshot = s
	conn.Verdict = s.Verdict()
	conn.EndsIn = Duration(s.EndsIn())
	conn.SlowPath = s.SlowPath()
	return conn
}

// acceptedOn is the listening socket a connection from local was accepted
// on, or nil: one on its address (with or without its zone), or on the
// unspecified address, at its port.
func (sc *scanner) acceptedOn(local netip.AddrPort) *netip.AddrPort {
	for _, ln := range []netip.AddrPort{local, netip.AddrPortFrom(local.Addr().WithZone(""), local.Port()),
		netip.AddrPortFrom(netip.IPv4Unspecified(), local.Port()), netip.AddrPortFrom(netip.IPv6Unspecified(), local.Port())} {
		if sc.listening[ln] {
			return &ln
		}
	}
	return nil
}

// options fills in s.Options and conn.Settings: read from the socket with
// Options.Settings where it can be, else the kernel's defaults, with
// keepalive as the socket's timer shows it when it is idle.
func (sc *scanner) options(conn *Conn, s *tuning.Snapshot, m *netlink.Socket) {
	s.Options, conn.Settings = sc.defaults, "assumed: kernel defaults"
	if s.Idle() && m.State == netlink.TCP_ESTABLISHED {
		// An idle established socket's only timer is keepalive's.
		s.Options.KeepAlive.Enable = m.Timer == 2
		conn.Settings += fmt.Sprintf(", keepalive %s (its timer)", map[bool]string{true: "on", false: "off"}[m.Timer == 2])
	}
	switch {
	case !sc.o.Settings:
	case sc.c.Settings != "":
		conn.Settings = "not read: a duplicate would re-tag the socket's cgroup class; " + conn.Settings
	case conn.PID != 0:
		if opts, err := sc.read(Holder{PID: conn.PID, FD: conn.FD}); err == nil {
			s.Options, s.OptionsKnown, conn.Settings = opts, true, "read"
		} else {
			conn.Settings = fmt.Sprintf("unreadable (%v); %s", err, conn.Settings)
		}
	}
}

// read reads the options of the socket h holds, through a duplicate of
// its descriptor.
func (sc *scanner) read(h Holder) (opts tuning.Config, err error) {
	err = sc.procs.Do(h.PID, h.FD, func(rc syscall.RawConn) error {
		opts, err = tuning.ReadRawConn(rc)
		return err
	})
	return opts, err
}

// listener is the listening socket of r if the filter picks it, or nil.
func (o Options) listener(r *netlink.InetDiagTCPInfoResp, owners map[uint32][]Holder, zone func(netip.AddrPort, uint32) netip.AddrPort) *Listener {
	m := r.InetDiagMsg
	ln := &Listener{Addr: zone(addrPort(m.ID.Source, m.ID.SourcePort), m.ID.Interface),
		Socket: Socket{Inode: m.INode, Cookie: cookie(m), Interface: m.ID.Interface}, Holders: owners[m.INode]}
	h, held := o.holder(ln.Holders)
	switch {
	case o.Peer.IsValid(), o.Port != 0 && int(ln.Addr.Port()) != o.Port, o.PID != 0 && !held:
		return nil
	}
	if held {
		ln.PID, ln.Process, ln.FD = h.PID, h.Process, h.FD
	}
	return ln
}

// holder is the holder the filter names (its PID), or else the first.
func (o Options) holder(hs []Holder) (Holder, bool) {
	for _, h := range hs {
		if o.PID == 0 || h.PID == o.PID {
			return h, true
		}
	}
	return Holder{}, false
}

// cookie is the socket's sock_diag cookie, as the kernel reports it (two
// 32-bit halves, low first).
func cookie(m *netlink.Socket) uint64 {
	return uint64(m.ID.Cookie[0]) | uint64(m.ID.Cookie[1])<<32
}

func (o Options) pick(c *Conn) bool {
	if o.Port != 0 && int(c.Local.Port()) != o.Port && int(c.Remote.Port()) != o.Port {
		return false
	}
	if _, held := o.holder(c.Holders); o.PID != 0 && !held {
		return false
	}
	return !o.Peer.IsValid() || o.Peer.Contains(c.Remote.Addr().Unmap().WithZone(""))
}

func (c *Census) group() {
	groups := map[string]*Group{}
	// By group, then peer, with no string built per comparison: at
	// 100,000 connections a sort makes some two million.
	sort.Slice(c.Connections, func(i, j int) bool {
		a, b := c.Connections[i], c.Connections[j]
		la, ka := a.groupKey()
		lb, kb := b.groupKey()
		if la != lb {
			return !la
		}
		if d := ka.Compare(kb); d != 0 {
			return d < 0
		}
		return a.Remote.Compare(b.Remote) < 0
	})
	for _, conn := range c.Connections {
		name := conn.group()
		g := groups[name]
		if g == nil {
			g = &Group{Name: name}
			groups[name] = g
			c.Groups = append(c.Groups, g)
		}
		if g.Process == "" && conn.Process != "" {
			g.Process = fmt.Sprintf("%s[%d]", conn.Process, conn.PID)
		}
		s := conn.Snapshot
		if s.State == tuning.TCPCloseWait {
			g.CloseWait++
			g.CloseWaitFor = max(g.CloseWaitFor, Duration(s.SinceDataReceived))
		} else {
			g.Established++
		}
		switch conn.Verdict {
		case tuning.Unwatched:
			g.Unwatched++
		case tuning.WindowStalled:
			g.Stalled++
		case tuning.Suspected:
			g.Suspected++
			if !s.Idle() && !s.Shut() {
				g.Retransmitting++
				g.SilentFor = max(g.SilentFor, Duration(s.SinceACK))
			}
		}
		if time.Duration(conn.EndsIn) == tuning.Never {
			g.NeverEnds++
		} else {
			g.MaxEndsIn = max(g.MaxEndsIn, conn.EndsIn)
		}
		if s.OptionsKnown {
			g.SettingsRead++
		}
		if conn.SlowPath {
			g.SlowPath++
		}
	}
	sort.Slice(c.Groups, func(i, j int) bool { return c.Groups[i].Name < c.Groups[j].Name })
}

// group names the Group conn belongs to.
func (conn *Conn) group() string {
	if listen, key := conn.groupKey(); listen {
		return "listen " + key.String()
	}
	return "dial " + conn.Remote.String()
}

// groupKey is what group names: the listener conn was accepted on, or
// else its peer.
func (conn *Conn) groupKey() (listen bool, key netip.AddrPort) {
	if conn.Listener != nil {
		return true, *conn.Listener
	}
	return false, conn.Remote
}

// snapshot is tuning.Snapshot from sock_diag's TCP_INFO, decoded as a
// socket's own (sockopt.Decode); the bytes written and not acknowledged
// are idiag_wqueue (write_seq - snd_una), as SIOCOUTQ gives them.
func snapshot(r *netlink.InetDiagTCPInfoResp) tuning.Snapshot {
	t := r.TCPInfo
	i := sockopt.Decode(&unix.TCPInfo{
		State: t.State, Retransmits: t.Retransmits, Probes: t.Probes, Backoff: t.Backoff,
		Rto: t.Rto, Unacked: t.Unacked, Last_data_sent: t.Last_data_sent,
		Last_data_recv: t.Last_data_recv, Last_ack_recv: t.Last_ack_recv, Rtt: t.Rtt,
		Rttvar: t.Rttvar, Bytes_acked: t.Bytes_acked, Notsent_bytes: t.Notsent_bytes,
		Snd_wnd: t.Snd_wnd,
	})
	return tuning.Snapshot{
		State:             tuning.TCPState(i.State),
		RTT:               i.RTT,
		RTTVar:            i.RTTVar,
		RTO:               i.RTO,
		UnackedSegments:   i.Unacked,
		UnackedBytes:      i.UnackedBytes(r.InetDiagMsg.WQueue),
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

func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}

func timerName(t uint8) string {
	switch t {
	case 1:
		return "on"
	case 2:
		return "keepalive"
	case 4:
		return "probe0"
	}
	return "off"
}

// kernelDefaults is what a socket holds that no one set: no user timeout,
// keepalive off, its timings from net.ipv4.tcp_keepalive_*.
func kernelDefaults() tuning.Config {
	read := func(name string, def int) int {
		b, err := os.ReadFile("/proc/sys/net/ipv4/" + name)
		if err != nil {
			return def
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return def
		}
		return n
	}
	var c tuning.Config
	c.KeepAlive.Idle = time.Duration(read("tcp_keepalive_time", 7200)) * time.Second
	c.KeepAlive.Interval = time.Duration(read("tcp_keepalive_intvl", 75)) * time.Second
	c.KeepAlive.Count = read("tcp_keepalive_probes", 9)
	return c
}

// SocketHolders maps socket inodes to every process and descriptor
// holding them, from /proc/*/fd, in pid order. Processes this user may not
// look into are left out (their sockets show no holder).
func SocketHolders() (map[uint32][]Holder, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("census: %w", err)
	}
	owners := map[uint32][]Holder{}
	buf := make([]byte, 64)
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		dir := "/proc/" + p.Name() + "/fd/"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		comm := ""
		for _, f := range fds {
			n, err := unix.Readlink(dir+f.Name(), buf)
			if err != nil || n < 9 || string(buf[:8]) != "socket:[" {
				continue
			}
			ino, err := strconv.ParseUint(string(buf[8:n-1]), 10, 32)
			if err != nil {
				continue
			}
			if comm == "" {
				b, _ := os.ReadFile("/proc/" + p.Name() + "/comm")
				comm = strings.TrimSpace(string(b))
			}
			fd, _ := strconv.Atoi(f.Name())
			owners[uint32(ino)] = append(owners[uint32(ino)], Holder{PID: pid, Process: comm, FD: fd})
		}
	}
	return owners, nil
}

// zoner gives an IPv6 link-local address the zone of the interface its
// socket is bound to, by name where this namespace has it, as ss does.
func zoner() func(netip.AddrPort, uint32) netip.AddrPort {
	names := map[uint32]string{}
	return func(a netip.AddrPort, ifindex uint32) netip.AddrPort {
		if ifindex == 0 || !a.Addr().Is6() || !a.Addr().IsLinkLocalUnicast() {
			return a
		}
		name, ok := names[ifindex]
		if !ok {
			name = strconv.Itoa(int(ifindex))
			if ifi, err := net.InterfaceByIndex(int(ifindex)); err == nil {
				name = ifi.Name
			}
			names[ifindex] = name
		}
		return netip.AddrPortFrom(a.Addr().WithZone(name), a.Port())
	}
}
