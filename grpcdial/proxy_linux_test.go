package grpcdial

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ghostsock/ghostsock/tuning"
)

// connectProxy is a minimal HTTP CONNECT proxy that records each request
// and connects every tunnel to backend, whatever it was asked for: so a
// name only the proxy could resolve still works, and the test sees what
// the client asked.
type connectProxy struct {
	ln       net.Listener
	backend  string
	wantAuth string // if set, the Proxy-Authorization a request must carry
	mu       sync.Mutex
	requests []*http.Request
}

func newConnectProxy(t *testing.T, backend, wantAuth string) *connectProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &connectProxy{ln: ln, backend: backend, wantAuth: wantAuth}
	t.Cleanup(func() { ln.Close() })
	go p.serve()
	return p
}

func (p *connectProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.tunnel(c)
	}
}

func (p *connectProxy) tunnel(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.requests = append(p.requests, req)
	p.mu.Unlock()
	if p.wantAuth != "" && req.Header.Get("Proxy-Authorization") != p.wantAuth {
		io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
		return
	}
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	defer b.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{}, 2) // either way ending ends the tunnel, as a proxy's does
	go func() { io.Copy(b, br); done <- struct{}{} }()
	go func() { io.Copy(c, b); done <- struct{}{} }()
	<-done
}

func (p *connectProxy) asked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.requests {
		out = append(out, r.Host)
	}
	return out
}

// proxiedClient builds a channel with s, the environment answering proxy
// (for every target, loopback included) unless exempt says otherwise.
func proxiedClient(t *testing.T, s Settings, target string, proxy *url.URL, exempt func(host string) bool) *grpc.ClientConn {
	c := budget(t, 7*time.Second)
	c.NoGuard = true
	p := &proxies{localDNS: s.LocalDNSResolution, env: func(u *url.URL) (*url.URL, error) {
		if exempt != nil && exempt(u.Hostname()) {
			return nil, nil
		}
		return proxy, nil
	}}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	opts = s.proxied(opts, c.DialFunc(nil), p)
	cc, err := grpc.NewClient(target, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serve(t, ln)
	port := ln.Addr().(*net.TCPAddr).Port
	backend := ln.Addr().String()

	t.Run("dns target: the proxy resolves the name (CONNECT host:port)", func(t *testing.T) {
		px := newConnectProxy(t, backend, "")
		cc := proxiedClient(t, Settings{}, "dns:///ghost.invalid:"+strconv.Itoa(port), &url.URL{Scheme: "http", Host: px.ln.Addr().String()}, nil)
		require.NoError(t, check(t, cc), "ghost.invalid resolves nowhere: only the proxy's CONNECT can reach it")
		assert.Equal(t, []string{"ghost.invalid:" + strconv.Itoa(port)}, px.asked())
	})
	t.Run("dns target without a port: 443, as grpc-go adds", func(t *testing.T) {
		px := newConnectProxy(t, backend, "")
		cc := proxiedClient(t, Settings{}, "ghost.invalid", &url.URL{Scheme: "http", Host: px.ln.Addr().String()}, nil)
		require.NoError(t, check(t, cc))
		assert.Equal(t, []string{"ghost.invalid:443"}, px.asked())
	})
	t.Run("LocalDNSResolution: resolved here, CONNECT to the address", func(t *testing.T) {
		px := newConnectProxy(t, backend, "")
		cc := proxiedClient(t, Settings{LocalDNSResolution: true}, "dns:///localhost:"+strconv.Itoa(port), &url.URL{Scheme: "http", Host: px.ln.Addr().String()}, nil)
		require.NoError(t, check(t, cc))
		require.NotEmpty(t, px.asked())
		host, _, err := net.SplitHostPort(px.asked()[0])
		require.NoError(t, err)
		assert.True(t, net.ParseIP(host).IsLoopback(), "CONNECT %s", px.asked()[0])
	})
	t.Run("passthrough target", func(t *testing.T) {
		px := newConnectProxy(t, backend, "")
		cc := proxiedClient(t, Settings{}, "passthrough:///"+backend, &url.URL{Scheme: "http", Host: px.ln.Addr().String()}, nil)
		require.NoError(t, check(t, cc))
		assert.Equal(t, []string{backend}, px.asked())
	})
	t.Run("basic credentials from the proxy URL", func(t *testing.T) {
		px := newConnectProxy(t, backend, "Basic Z2hvc3Q6c29jaw==") // ghost:sock
		cc := proxiedClient(t, Settings{}, "passthrough:///"+backend, &url.URL{Scheme: "http", User: url.UserPassword("ghost", "sock"), Host: px.ln.Addr().String()}, nil)
		require.NoError(t, check(t, cc))
		assert.Len(t, px.asked(), 1)
	})
	t.Run("refused by the proxy: ErrProxy, with its status", func(t *testing.T) {
		px := newConnectProxy(t, backend, "Basic Z2hvc3Q6c29jaw==")
		c := budget(t, 7*time.Second)
		_, err := dialProxy(t.Context(), c.DialFunc(nil), &url.URL{Scheme: "http", Host: px.ln.Addr().String()}, backend)
		assert.ErrorIs(t, err, ErrProxy)
		assert.ErrorContains(t, err, "407")
	})
	t.Run("NO_PROXY exempts the target: direct", func(t *testing.T) {
		px := newConnectProxy(t, backend, "")
		cc := proxiedClient(t, Settings{}, "dns:///localhost:"+strconv.Itoa(port), &url.URL{Scheme: "http", Host: px.ln.Addr().String()},
			func(host string) bool { return host == "localhost" })
		require.NoError(t, check(t, cc))
		assert.Empty(t, px.asked())
	})
	t.Run("NoProxy: direct, whatever the environment", func(t *testing.T) {
		t.Setenv("HTTPS_PROXY", "http://192.0.2.1:9") // TEST-NET: would never answer
		c := budget(t, 7*time.Second)
		cc, err := grpc.NewClient("passthrough:///"+backend, append(Settings{NoProxy: true}.Options(c), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		require.NoError(t, err)
		defer cc.Close()
		require.NoError(t, check(t, cc))
	})
	t.Run("the socket to the proxy is the hardened one", func(t *testing.T) {
		px := newConnectProxy(t, backend, "")
		c := budget(t, 7*time.Second)
		c.NoGuard = true // as Options dials
		conn, err := dialProxy(t.Context(), c.DialFunc(nil), &url.URL{Scheme: "http", Host: px.ln.Addr().String()}, backend)
		require.NoError(t, err)
		defer conn.Close()
		assert.Equal(t, px.ln.Addr().String(), conn.RemoteAddr().String())
		held, err := tuning.Read(conn)
		require.NoError(t, err)
		assert.Equal(t, c.UserTimeout, held.UserTimeout)
	})
	t.Run("a dead context ends the handshake", func(t *testing.T) {
		silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
		require.NoError(t, err)
		defer silent.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		c := budget(t, 7*time.Second)
		_, err = dialProxy(ctx, c.DialFunc(nil), &url.URL{Scheme: "http", Host: silent.Addr().String()}, backend)
		assert.ErrorIs(t, err, ErrProxy)
		assert.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded), "%v", err)
	})
}
