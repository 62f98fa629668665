package grpcdial

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/net/http/httpproxy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
)

// ErrProxy is wrapped by every error of the HTTP CONNECT handshake with a
// proxy: the proxy refused (its status is in the message) or broke off.
var ErrProxy = errors.New("grpcdial: proxy CONNECT failed")

// proxyDefaultPort is the port grpc-go adds to a dns target, and to a
// proxy's address, that has none (delegatingresolver's defaultPort, and
// the dns resolver's).
const proxyDefaultPort = "443"

// proxies does for a channel what grpc-go's delegating resolver and its
// proxy dial do when no custom dialer is set (resolver_wrapper.go,
// internal/resolver/delegatingresolver, internal/transport/proxy.go in
// v1.85): it decides once per target, from the environment, whether the
// target goes through an HTTPS proxy; if so the channel's addresses are
// reached by HTTP CONNECT through it. grpc-go cannot do it here, because
// it skips all of that whenever a dialer is set, and the hardened dialer
// must be set. The decision travels from the resolvers, which know the
// target, to the dialer, which knows only an address, in routes.
type proxies struct {
	env      func(*url.URL) (*url.URL, error) // httpproxy's ProxyFunc, read from the environment once
	localDNS bool                             // resolve dns targets here; CONNECT to their addresses
	routes   sync.Map                         // address -> *url.URL of its proxy
}

func newProxies(localDNS bool) *proxies {
	return &proxies{env: httpproxy.FromEnvironment().ProxyFunc(), localDNS: localDNS}
}

// proxyFor is the proxy for a target address, as http.ProxyFromEnvironment
// answers for https://address: HTTPS_PROXY (or https_proxy) unless
// NO_PROXY (no_proxy) exempts the host, never for localhost or a loopback
// address.
func (p *proxies) proxyFor(address string) (*url.URL, error) {
	return p.env(&url.URL{Scheme: "https", Host: address})
}

// builders are the resolvers for the schemes grpc-go's own proxy support
// wraps in practice: dns (grpc.NewClient's default) and passthrough
// (grpc.Dial's). Each keeps the scheme's own resolver and its behaviour
// when no proxy applies.
func (p *proxies) builders() []resolver.Builder {
	var bs []resolver.Builder
	for _, scheme := range []string{"dns", "passthrough"} {
		if b := resolver.Get(scheme); b != nil {
			bs = append(bs, &proxyBuilder{Builder: b, p: p})
		}
	}
	return bs
}

type proxyBuilder struct {
	resolver.Builder
	p *proxies
}

func (b *proxyBuilder) Build(target resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	addr := target.Endpoint()
	proxyResolves := b.Scheme() == "dns" && !b.p.localDNS
	if proxyResolves {
		var err error
		if addr, err = withDefaultPort(addr); err != nil {
			return nil, fmt.Errorf("grpcdial: invalid target address %q: %w", target.Endpoint(), err)
		}
	}
	proxy, err := b.p.proxyFor(addr)
	if err != nil {
		return nil, fmt.Errorf("grpcdial: proxy for target %q: %w", target, err)
	}
	if proxy == nil {
		return b.Builder.Build(target, cc, opts)
	}
	if proxyResolves {
		// The proxy resolves the name: CONNECT host:port, as grpc-go does
		// unless grpc.WithLocalDNSResolution.
		b.p.routes.Store(addr, proxy)
		a := resolver.Address{Addr: addr}
		if err := cc.UpdateState(resolver.State{Addresses: []resolver.Address{a}, Endpoints: []resolver.Endpoint{{Addresses: []resolver.Address{a}}}}); err != nil {
			return nil, err
		}
		return nopResolver{}, nil
	}
	return b.Builder.Build(target, &routingClientConn{ClientConn: cc, p: b.p, proxy: proxy}, opts)
}

// routingClientConn records that every address the target's resolver
// reports goes through proxy.
type routingClientConn struct {
	resolver.ClientConn
	p     *proxies
	proxy *url.URL
}

func (c *routingClientConn) UpdateState(s resolver.State) error {
	for _, a := range s.Addresses {
		c.p.routes.Store(a.Addr, c.proxy)
	}
	for _, e := range s.Endpoints {
		for _, a := range e.Addresses {
			c.p.routes.Store(a.Addr, c.proxy)
		}
	}
	return c.ClientConn.UpdateState(s)
}

type nopResolver struct{}

func (nopResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (nopResolver) Close()                                {}

// withDefaultPort is delegatingresolver's parseTarget: port 443 if none,
// localhost if no host.
func withDefaultPort(target string) (string, error) {
	if target == "" {
		return "", errors.New("missing address")
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return net.JoinHostPort(target, proxyDefaultPort), nil
	}
	if port == "" {
		return "", errors.New("missing port after port-separator colon")
	}
	if host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port), nil
}

// route is the proxy for address, if its target goes through one.
func (p *proxies) route(address string) *url.URL {
	if v, ok := p.routes.Load(address); ok {
		return v.(*url.URL)
	}
	return nil
}

// dialProxy dials proxy with dial (the hardened dialer: the socket to the
// proxy is the one the kernel watches) and asks it to CONNECT to address,
// with Basic credentials if the proxy URL has a user, as grpc-go's
// doHTTPConnectHandshake does.
func dialProxy(ctx context.Context, dial func(ctx context.Context, network, address string) (net.Conn, error), proxy *url.URL, address string) (_ net.Conn, err error) {
	host := proxy.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, proxyDefaultPort)
	}
	conn, err := dial(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	// The handshake ends with ctx: by its deadline, or at once when it is
	// canceled. Deferred in this order, the deadline is cleared after the
	// AfterFunc is stopped, so a cancellation racing a successful
	// handshake cannot leave a past deadline on the returned connection.
	defer conn.SetDeadline(time.Time{})
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Host: address},
		Header: http.Header{"User-Agent": {"grpc-go/" + grpc.Version}},
	}
	if u := proxy.User; u != nil {
		pw, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("%w: to %s via %s: write: %w", ErrProxy, address, host, err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, req)
	if err != nil {
		return nil, fmt.Errorf("%w: to %s via %s: read: %w", ErrProxy, address, host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: to %s via %s: %s", ErrProxy, address, host, resp.Status)
	}
	if r.Buffered() > 0 {
		return &bufferedConn{Conn: conn, r: r}, nil
	}
	return conn, nil
}

// bufferedConn returns what the handshake read past the proxy's response
// before reading the connection again.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// NetConn returns the connection beneath, for tuning.Inspect and Read.
func (c *bufferedConn) NetConn() net.Conn { return c.Conn }
