package httptransport

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/internal/sockfind"
	"github.com/ghostsock/ghostsock/tuning"
)

func budget(t *testing.T) tuning.Config {
	c, err := tuning.ForBudget(6 * time.Second)
	require.NoError(t, err)
	return c
}

// get makes one request and returns the protocol and the client socket's
// local address, seen by the server.
func get(t *testing.T, client *http.Client, url string) (proto int, remote string) {
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.ProtoMajor, string(body)
}

func echoRemote() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RemoteAddr) })
}

// assertClientHolds checks what the kernel holds on the client's socket
// once the guard is at rest: the guard holds the user timeout at 0 while
// data it wrote may be queued and lingers so, and puts c's back within a
// user timeout and a half of the last write.
func assertClientHolds(t *testing.T, srv *httptest.Server, remote string, c tuning.Config, msgAndArgs ...any) {
	t.Helper()
	local, err := net.ResolveTCPAddr("tcp", remote)
	require.NoError(t, err)
	var held tuning.Config
	assert.Eventually(t, func() bool {
		held, err = sockfind.Read(local, srv.Listener.Addr())
		return err == nil && held.UserTimeout == c.UserTimeout
	}, 3*c.UserTimeout/2+time.Second, 20*time.Millisecond, "guard at rest")
	require.NoError(t, err)
	assert.Equal(t, c.GuardHolds(), held, msgAndArgs...)
}

func TestNewMatchesDefaultTransport(t *testing.T) {
	def := http.DefaultTransport.(*http.Transport)
	tr := New(budget(t))
	assert.NotSame(t, def, tr)
	assert.NotNil(t, tr.Proxy)
	assert.Equal(t, def.ForceAttemptHTTP2, tr.ForceAttemptHTTP2)
	assert.Equal(t, def.MaxIdleConns, tr.MaxIdleConns)
	assert.Equal(t, def.IdleConnTimeout, tr.IdleConnTimeout)
	assert.Equal(t, def.TLSHandshakeTimeout, tr.TLSHandshakeTimeout)
	assert.Equal(t, def.ExpectContinueTimeout, tr.ExpectContinueTimeout)
	assert.NotSame(t, tr, New(budget(t)), "each call returns a transport of its own")
}

func TestHTTP1SocketHoldsConfig(t *testing.T) {
	c := budget(t)
	srv := httptest.NewServer(echoRemote())
	defer srv.Close()
	tr := New(c)
	defer tr.CloseIdleConnections()
	proto, remote := get(t, &http.Client{Transport: tr}, srv.URL)
	assert.Equal(t, 1, proto)
	assertClientHolds(t, srv, remote, c)
}

func TestHTTP2TLSSocketHoldsConfig(t *testing.T) {
	c := budget(t)
	srv := httptest.NewUnstartedServer(echoRemote())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	tr := New(c)
	tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	defer tr.CloseIdleConnections()
	proto, remote := get(t, &http.Client{Transport: tr}, srv.URL)
	assert.Equal(t, 2, proto)
	assertClientHolds(t, srv, remote, c)
}

func TestHardenKeepsCallerSettings(t *testing.T) {
	c := budget(t)
	proxy := func(*http.Request) (*url.URL, error) { return nil, nil }
	tlsConf := &tls.Config{ServerName: "example.test"}
	h2 := &http.HTTP2Config{SendPingTimeout: 10 * time.Second, PingTimeout: 3 * time.Second}
	var dialed int
	tr := &http.Transport{
		Proxy:           proxy,
		TLSClientConfig: tlsConf,
		MaxIdleConns:    7,
		HTTP2:           h2,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed++
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	Harden(tr, c)
	assert.Same(t, tlsConf, tr.TLSClientConfig)
	assert.Equal(t, 7, tr.MaxIdleConns)
	assert.NotNil(t, tr.Proxy)
	assert.Equal(t, time.Duration(0), tr.HTTP2.SendPingTimeout, "health checks off")
	assert.Equal(t, 3*time.Second, tr.HTTP2.PingTimeout)
	assert.Equal(t, 10*time.Second, h2.SendPingTimeout, "the caller's HTTP2Config is not changed")

	srv := httptest.NewServer(echoRemote())
	defer srv.Close()
	defer tr.CloseIdleConnections()
	tr.TLSClientConfig = nil
	_, remote := get(t, &http.Client{Transport: tr}, srv.URL)
	assert.Equal(t, 1, dialed, "the caller's dialer is kept")
	assertClientHolds(t, srv, remote, c, "and its connections hardened and guarded")
}

func TestInvalidConfigFailsRequests(t *testing.T) {
	srv := httptest.NewServer(echoRemote())
	defer srv.Close()
	bad := tuning.Config{UserTimeout: time.Microsecond}
	for name, tr := range map[string]*http.Transport{
		"New": New(bad),
		"Harden with dial": func() *http.Transport {
			t := &http.Transport{DialContext: (&net.Dialer{}).DialContext}
			Harden(t, bad)
			return t
		}(),
	} {
		_, err := (&http.Client{Transport: tr}).Get(srv.URL)
		assert.ErrorIs(t, err, tuning.ErrInvalidConfig, name)
	}
}

// TestServerWithWrapListener serves HTTP from an http.Server whose listener
// is wrapped, and reads the accepted connection's options.
func TestServerWithWrapListener(t *testing.T) {
	c := budget(t)
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	held := make(chan tuning.Config, 1)
	srv := &http.Server{
		Handler: echoRemote(),
		ConnContext: func(ctx context.Context, conn net.Conn) context.Context {
			h, err := tuning.Read(conn)
			if err == nil {
				held <- h
			}
			return ctx
		},
	}
	go srv.Serve(c.WrapListener(plain))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	get(t, &http.Client{Transport: tr}, "http://"+plain.Addr().String())
	select {
	case h := <-held:
		assert.Equal(t, c.GuardHolds(), h, "guarded, at rest")
	case <-time.After(5 * time.Second):
		t.Fatal("no connection read")
	}
}
