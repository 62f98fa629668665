package lab

import (
	"fmt"
	"net/netip"
	"strings"
)

// ProxyHost is a third host, joined to the client by one veth pair and to
// the server by another, that can reach the server's address: a proxy
// runs there, between client and server. The client still reaches the
// server directly too, so a client can be seen to bypass the proxy.
type ProxyHost struct {
	// Addr is the proxy host's address on the client's side; ServerSide
	// is its address on the server's side, the peer the server sees for
	// connections the proxy makes.
	Addr, ServerSide netip.Addr
	clientSide       netip.Addr // the client's address on the link to the proxy
	serverLink       netip.Addr // the server's address on the link to the proxy
	l                *Lab
	run              chan func()
	tid              int
	links            []string // the client-side names of the veth pairs, deleted by Close
	vanished         bool
}

// AddProxyHost builds the proxy host. Close the lab after closing it.
func (l *Lab) AddProxyHost() (*ProxyHost, error) {
	n := l.ServerAddr.As4()[2]
	p := &ProxyHost{
		Addr:       netip.AddrFrom4([4]byte{100, 64, n, 2}),
		clientSide: netip.AddrFrom4([4]byte{100, 64, n, 1}),
		ServerSide: netip.AddrFrom4([4]byte{100, 65, n, 2}),
		serverLink: netip.AddrFrom4([4]byte{100, 65, n, 1}),
		l:          l,
	}
	var err error
	if p.run, p.tid, err = startHost(); err != nil {
		return nil, err
	}
	cp, pc := fmt.Sprintf("gs%dp", n), fmt.Sprintf("gs%dq", n) // client <-> proxy
	sp, ps := fmt.Sprintf("gs%dr", n), fmt.Sprintf("gs%dt", n) // server <-> proxy
	steps := []struct {
		on   chan func() // nil: the client host
		args string
	}{
		{p.run, "link set lo up"},
		{nil, fmt.Sprintf("link add %s type veth peer name %s netns %d", cp, pc, p.tid)},
		{nil, fmt.Sprintf("addr add %s/24 dev %s", p.clientSide, cp)},
		{nil, "link set " + cp + " up"},
		{p.run, fmt.Sprintf("addr add %s/24 dev %s", p.Addr, pc)},
		{p.run, "link set " + pc + " up"},
		{l.server, fmt.Sprintf("link add %s type veth peer name %s netns %d", sp, ps, p.tid)},
		{l.server, fmt.Sprintf("addr add %s/24 dev %s", p.serverLink, sp)},
		{l.server, "link set " + sp + " up"},
		{p.run, fmt.Sprintf("addr add %s/24 dev %s", p.ServerSide, ps)},
		{p.run, "link set " + ps + " up"},
		{p.run, fmt.Sprintf("route add %s/32 via %s", l.ServerAddr, p.serverLink)},
	}
	p.links = []string{cp}
	for _, s := range steps {
		if err := ipOn(s.on, "proxy setup", strings.Fields(s.args)...); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// In runs fn in the proxy host's namespace: a process fn starts runs
// there.
func (p *ProxyHost) In(fn func()) { in(p.run, fn) }

// Vanish makes the proxy host disappear as Lab.Vanish makes a host
// disappear: blackhole routes on it for the client and the server, so
// nothing it receives is answered and nothing it sends leaves.
func (p *ProxyHost) Vanish() error {
	if p.vanished {
		return nil
	}
	for _, a := range []netip.Addr{p.clientSide, p.l.ServerAddr, p.serverLink} {
		if err := ipOn(p.run, "proxy", "route", "replace", "blackhole", netip.PrefixFrom(a, 32).String()); err != nil {
			return err
		}
	}
	p.vanished = true
	return nil
}

// Close removes the links and ends the proxy host. Processes started in
// it must have ended.
func (p *ProxyHost) Close() error {
	var err error
	for _, link := range p.links {
		if e := ipOn(nil, "client", "link", "del", link); e != nil && err == nil {
			err = e
		}
	}
	close(p.run)
	return err
}
