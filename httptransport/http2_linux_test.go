package httptransport

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/ghostsock/ghostsock/tuning"
)

// h2cServer serves HTTP/2 with prior knowledge, no TLS, on loopback.
func h2cServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: echoRemote(), Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// connsOf records the connections a dial function returns.
type connsOf struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (r *connsOf) dial(dial func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error)) func(context.Context, string, string, *tls.Config) (net.Conn, error) {
	return func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
		c, err := dial(ctx, network, addr, cfg)
		if err == nil {
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
		}
		return c, err
	}
}

func (r *connsOf) only(t *testing.T) net.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Len(t, r.conns, 1)
	return r.conns[0]
}

func TestHTTP2Transports(t *testing.T) {
	c := budget(t)
	t.Run("NewH2C", func(t *testing.T) {
		url := h2cServer(t)
		tr := NewH2C(c)
		defer tr.CloseIdleConnections()
		proto, _ := get(t, &http.Client{Transport: tr}, url)
		assert.Equal(t, 2, proto)
		assert.Zero(t, tr.ReadIdleTimeout, "no PING health check")
	})
	t.Run("HardenHTTP2 over a caller's h2c DialTLSContext", func(t *testing.T) {
		url := h2cServer(t)
		rec := &connsOf{}
		tr := &http2.Transport{AllowHTTP: true, ReadIdleTimeout: time.Second, DialTLSContext: rec.dial(
			func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			})}
		HardenHTTP2(tr, c)
		defer tr.CloseIdleConnections()
		proto, _ := get(t, &http.Client{Transport: tr}, url)
		assert.Equal(t, 2, proto)
		assert.Zero(t, tr.ReadIdleTimeout, "the health check switched off")
		held, err := tuning.Read(rec.only(t))
		require.NoError(t, err)
		assert.Equal(t, c.UserTimeout, held.UserTimeout, "the caller's connection carries c")
		assert.Equal(t, c.KeepAlive.Idle, held.KeepAlive.Idle)
	})
	t.Run("NewHTTP2 over TLS", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(echoRemote())
		srv.EnableHTTP2 = true
		srv.StartTLS()
		defer srv.Close()
		tr := NewHTTP2(c)
		tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		defer tr.CloseIdleConnections()
		rec := &connsOf{}
		tr.DialTLSContext = rec.dial(tr.DialTLSContext)
		proto, _ := get(t, &http.Client{Transport: tr}, srv.URL)
		assert.Equal(t, 2, proto)
		conn := rec.only(t)
		require.IsType(t, &tls.Conn{}, conn)
		held, err := tuning.Read(conn)
		require.NoError(t, err)
		assert.Equal(t, c.UserTimeout, held.UserTimeout, "TLS over the hardened socket")
	})
	t.Run("HardenHTTP2 over a deprecated DialTLS", func(t *testing.T) {
		called := false
		tr := &http2.Transport{DialTLS: func(network, addr string, cfg *tls.Config) (net.Conn, error) {
			called = true
			return nil, &net.OpError{Op: "dial", Err: context.Canceled}
		}}
		HardenHTTP2(tr, c)
		assert.Nil(t, tr.DialTLS)
		_, err := tr.DialTLSContext(t.Context(), "tcp", "127.0.0.1:1", &tls.Config{})
		assert.Error(t, err)
		assert.True(t, called, "the caller's DialTLS is kept")
	})
}
