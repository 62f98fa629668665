// Package lab builds a two-host network on one Linux machine for tests
// that need a peer to vanish: the calling process's own network namespace
// is the client host, a second namespace is the server host, and a veth
// pair joins them. Vanish adds blackhole routes so that one host's packets
// are dropped silently, no FIN and no RST, as when a phone's battery dies.
//
// Everything happens inside namespaces this process made (see Enter):
// traffic never reaches the machine's real network. Addresses are taken
// from 198.18.0.0/15 and fd00:6873::/32, ranges set aside for benchmarks and
// private use.
package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Host names one side of the lab.
type Host int

const (
	Client Host = iota // this process's own namespace: dials go out from here
	Server             // the second namespace: listen there with Listen
)

func (h Host) String() string { return [...]string{"client", "server"}[h] }

// Lab is a client and a server host joined by a veth pair (New) or by a
// link with a Path's delay, loss and middlebox (NewPath).
type Lab struct {
	ClientAddr, ServerAddr   netip.Addr // IPv4
	ClientAddr6, ServerAddr6 netip.Addr // IPv6
	extraClients             []netip.Addr
	link                     string // the client end of the veth pair
	server                   chan func()
	serverTID                int
	vanished                 [2]bool
	path                     *pathLink // a Path lab's link (NewPath); nil for a veth pair
}

var labs atomic.Int32

// New builds a lab. It needs CAP_NET_ADMIN and CAP_SYS_ADMIN in this
// process's network namespace, which Enter provides, and the ip command
// (Debian package iproute2).
func New() (*Lab, error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("lab: the ip command is missing (apt-get install -y iproute2): %w", err)
	}
	l, _, err := newLab(18, 0x6873, "c")
	if err != nil {
		return nil, err
	}
	peer := l.serverLink()
	if err := l.run([]step{
		{Client, "link set lo up"},
		{Server, "link set lo up"},
		{Client, fmt.Sprintf("link add %s type veth peer name %s netns %d", l.link, peer, l.serverTID)},
		{Client, fmt.Sprintf("addr add %s/24 dev %s", l.ClientAddr, l.link)},
		{Client, fmt.Sprintf("addr add %s/64 dev %s nodad", l.ClientAddr6, l.link)},
		{Server, fmt.Sprintf("addr add %s/24 dev %s", l.ServerAddr, peer)},
		{Server, fmt.Sprintf("addr add %s/64 dev %s nodad", l.ServerAddr6, peer)},
		{Client, "link set " + l.link + " up"},
		{Server, "link set " + peer + " up"},
	}); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// serverLink is the server end of a veth lab's pair.
func (l *Lab) serverLink() string { return strings.TrimSuffix(l.link, "c") + "s" }

// newLab numbers a new lab n, gives it the addresses 198.third.n.1 and .2
// and fd00:six:n::1 and ::2, names its client link gs<n><kind>, and starts
// its server host.
func newLab(third byte, six uint16, kind string) (l *Lab, n int32, err error) {
	n = labs.Add(1) % 250
	l = &Lab{
		ClientAddr:  netip.AddrFrom4([4]byte{198, third, byte(n), 1}),
		ServerAddr:  netip.AddrFrom4([4]byte{198, third, byte(n), 2}),
		ClientAddr6: netip.MustParseAddr(fmt.Sprintf("fd00:%x:%x::1", six, n)),
		ServerAddr6: netip.MustParseAddr(fmt.Sprintf("fd00:%x:%x::2", six, n)),
		link:        fmt.Sprintf("gs%d%s", n, kind),
	}
	l.server, l.serverTID, err = startHost()
	return l, n, err
}

// step is one ip command on one host of a lab being built.
type step struct {
	host Host
	args string
}

// run runs the steps in order, stopping at the first error.
func (l *Lab) run(steps []step) error {
	for _, s := range steps {
		if err := l.IP(s.host, splitArgs(s.args)...); err != nil {
			return err
		}
	}
	return nil
}

// startHost starts a goroutine that owns a host: it locks itself to an OS
// thread, moves that thread to a new network namespace and runs every
// function sent on the channel there. It never unlocks the thread, so no
// other goroutine can ever run in that namespace by mistake; when the
// channel is closed, the runtime ends the thread.
func startHost() (chan func(), int, error) {
	run := make(chan func())
	ready := make(chan error)
	var tid int
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ready <- fmt.Errorf("lab: unshare(CLONE_NEWNET): %w", err)
			return
		}
		tid = unix.Gettid()
		ready <- nil
		for fn := range run {
			fn()
		}
	}()
	if err := <-ready; err != nil {
		return nil, 0, err
	}
	return run, tid, nil
}

// in runs fn on the host that run serves, and waits for it.
func in(run chan func(), fn func()) {
	done := make(chan struct{})
	run <- func() { defer close(done); fn() }
	<-done
}

// InServer runs fn in the server host's namespace: sockets fn creates
// (listeners, dialed connections) belong to the server host and may then be
// used from any goroutine.
func (l *Lab) InServer(fn func()) { in(l.server, fn) }

// Listen listens on the server host with the given net.ListenConfig-like
// function, for example tuning.Config.Listen or (&net.ListenConfig{}).Listen.
func (l *Lab) Listen(listen func(ctx context.Context, network, address string) (net.Listener, error), network, address string) (ln net.Listener, err error) {
	l.InServer(func() { ln, err = listen(context.Background(), network, address) })
	return ln, err
}

// ListenerFile listens on a free TCP port of the server host's IPv4
// address and returns the listening socket as a file, to hand to a child
// process (as exec.Cmd.ExtraFiles), and its address.
func (l *Lab) ListenerFile() (*os.File, net.Addr, error) {
	ln, err := l.Listen((&net.ListenConfig{}).Listen, "tcp", l.ServerAddrPort(0))
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close() // the file is a copy
	f, err := ln.(*net.TCPListener).File()
	return f, ln.Addr(), err
}

// ServerAddrPort is the server's IPv4 address with port.
func (l *Lab) ServerAddrPort(port int) string {
	return netip.AddrPortFrom(l.ServerAddr, uint16(port)).String()
}

// AddClientAddrs gives the client host n more IPv4 addresses, for more
// connections to one server port than one address has ports. Vanish and
// Restore cover them too.
func (l *Lab) AddClientAddrs(n int) ([]netip.Addr, error) {
	if len(l.extraClients)+n > 200 {
		return nil, fmt.Errorf("lab: at most 200 extra client addresses")
	}
	var added []netip.Addr
	for range n {
		a := l.ClientAddr.As4()
		a[3] = byte(10 + len(l.extraClients))
		addr := netip.AddrFrom4(a)
		if err := l.IP(Client, "addr", "add", addr.String()+"/24", "dev", l.link); err != nil {
			return added, err
		}
		l.extraClients = append(l.extraClients, addr)
		added = append(added, addr)
	}
	return added, nil
}

// IP runs the ip command on host.
func (l *Lab) IP(host Host, args ...string) error {
	var on chan func()
	if host == Server {
		on = l.server
	}
	return ipOn(on, host.String(), args...)
}

// ipOn runs the ip command on the host that on serves (this process's own
// namespace if on is nil), named name in errors.
func ipOn(on chan func(), name string, args ...string) error {
	var err error
	run := func() {
		var out bytes.Buffer
		cmd := exec.Command("ip", args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if e := cmd.Run(); e != nil {
			err = fmt.Errorf("lab: ip %v on %s: %w: %s", args, name, e, bytes.TrimSpace(out.Bytes()))
		}
	}
	if on != nil {
		in(on, run)
	} else {
		run()
	}
	return err
}

// Vanish makes host disappear as a dead phone does: from now on every
// packet it sends to the other host, and every packet sent to it, is
// dropped without a trace. Neither side's kernel learns anything: no FIN,
// no RST, no ICMP.
func (l *Lab) Vanish(host Host) error { return l.routes(host, "add") }

// VanishClientAddr makes the connections of one client address (one
// AddClientAddrs gave) vanish alone, as Vanish(Client) does for all: a
// policy rule sends whatever the client host would send from a to the
// server into a blackhole, so what reaches a goes unanswered. The other
// client addresses go on talking.
func (l *Lab) VanishClientAddr(a netip.Addr) error {
	table := -1
	for i, e := range l.extraClients {
		if e == a {
			table = 100 + i
		}
	}
	if table < 0 {
		return fmt.Errorf("lab: %v is not an address AddClientAddrs gave", a)
	}
	t := fmt.Sprint(table)
	if err := l.IP(Client, "route", "add", "blackhole", netip.PrefixFrom(l.ServerAddr, 32).String(), "table", t); err != nil {
		return err
	}
	return l.IP(Client, "rule", "add", "from", a.String(), "lookup", t, "priority", t)
}

// Restore undoes Vanish: the same connections can talk again.
func (l *Lab) Restore(host Host) error { return l.routes(host, "del") }

// routes adds or deletes blackhole routes on the vanishing host, for every
// address of the other host: its kernel discards everything it would send,
// so whatever reaches it is never answered. The routes go on the vanishing
// host only: a blackhole on the observer's side would make the observer's
// own kernel fail its sends at once (a new connect(2) returns EINVAL), which
// a dead phone never causes.
func (l *Lab) routes(host Host, op string) error {
	if (op == "add") == l.vanished[host] {
		return nil
	}
	others := []netip.Addr{l.ServerAddr, l.ServerAddr6}
	if host == Server {
		others = append([]netip.Addr{l.ClientAddr, l.ClientAddr6}, l.extraClients...)
	}
	for _, a := range others {
		if err := l.IP(host, "route", op, "blackhole", netip.PrefixFrom(a, a.BitLen()).String()); err != nil {
			return err
		}
	}
	l.vanished[host] = op == "add"
	return nil
}

// Close removes the veth pair or the Path's link and ends the server host.
// Sockets still open on the server host keep its namespace alive until
// they are closed.
func (l *Lab) Close() error {
	var err error
	if l.path != nil {
		l.path.close() // the TUN devices go with their descriptors
	} else {
		err = l.IP(Client, "link", "del", l.link)
	}
	close(l.server)
	return err
}

func splitArgs(s string) []string {
	var out []string
	for _, f := range bytes.Fields([]byte(s)) {
		out = append(out, string(f))
	}
	return out
}
