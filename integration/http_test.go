//go:build linux

package integration

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// endless writes 32 KiB chunks until the client or the connection fails;
// /small answers a few bytes.
func endless(written chan<- error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, "ok")
			return
		}
		buf := make([]byte, 32<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				if written != nil {
					written <- err
				}
				return
			}
		}
	})
}

// httpServer serves h on the server host over ln made with listen; with
// tls it serves HTTP/2 over TLS, for the name example.com.
func httpServer(t *testing.T, l *lab.Lab, listen func(context.Context, string, string) (net.Listener, error), h http.Handler, useTLS bool, connState func(net.Conn, http.ConnState)) (*httptest.Server, string) {
	t.Helper()
	ln, err := l.Listen(listen, "tcp", l.ServerAddrPort(0))
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ConnState = connState
	if useTLS {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	// A vanished peer leaves the stock side of a pair with an active
	// connection that Close alone would wait for.
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv, srv.URL
}

// recorder makes a transport dial like tr and remembers the connections it made.
type recorder struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (r *recorder) wrap(tr *http.Transport) *http.Transport {
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
		}
		return c, err
	}
	return tr
}

func (r *recorder) last(t *testing.T) net.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.conns)
	return r.conns[len(r.conns)-1]
}

func clientFor(srv *httptest.Server, tr *http.Transport, useTLS bool) *http.Client {
	if useTLS {
		tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		tr.TLSClientConfig.ServerName = "example.com"
		tr.ForceAttemptHTTP2 = true
	}
	return &http.Client{Transport: tr}
}

func getSmall(t *testing.T, client *http.Client, url string, wantProto int) (reused bool) {
	t.Helper()
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/small", nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, wantProto, resp.ProtoMajor)
	return reused
}

// waitClosed polls the kernel state of conn until it leaves ESTABLISHED.
func waitClosed(t *testing.T, conn net.Conn, limit time.Duration) time.Time {
	t.Helper()
	rc := rawConn(t, conn)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		info, err := lab.TCPInfo(rc)
		if err != nil || info.State != lab.StateEstablished {
			return time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("connection still ESTABLISHED after %v", limit)
	return time.Time{}
}

// bodyErr starts a large download and returns the channel for the error
// that ends reading it, once 1 MiB has arrived.
func bodyErr(t *testing.T, client *http.Client, url string, wantProto int) <-chan error {
	t.Helper()
	resp, err := client.Get(url + "/large")
	require.NoError(t, err)
	require.Equal(t, wantProto, resp.ProtoMajor)
	_, err = io.CopyN(io.Discard, resp.Body, 1<<20)
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		defer resp.Body.Close()
		_, err := io.Copy(io.Discard, resp.Body)
		errc <- err
	}()
	return errc
}

func TestHTTPClient(t *testing.T) {
	t.Parallel()
	c := kit(t)
	idleBound, busyBound := windows(c)
	plainListen := (&net.ListenConfig{}).Listen

	for _, proto := range []struct {
		name  string
		tls   bool
		major int
	}{{"HTTP/1.1", false, 1}, {"HTTP/2 TLS", true, 2}} {
		t.Run(proto.name+"/pooled idle conn, server vanishes", func(t *testing.T) {
			l := newLab(t)
			srv, url := httpServer(t, l, plainListen, endless(nil), proto.tls, nil)
			rec := &recorder{}
			tr := rec.wrap(httptransport.New(c))
			defer tr.CloseIdleConnections()
			client := clientFor(srv, tr, proto.tls)
			getSmall(t, client, url, proto.major)
			pooled := rec.last(t)
			require.NoError(t, l.Vanish(lab.Server))
			start := time.Now()
			end := waitClosed(t, pooled, 3*idleBound.bound)
			expectWithin(t, proto.name+" pooled idle conn", end.Sub(start), idleBound)

			require.NoError(t, l.Restore(lab.Server))
			assert.False(t, getSmall(t, client, url, proto.major), "the next request must not reuse the dead connection")
		})
		t.Run(proto.name+"/large response being read, server vanishes", func(t *testing.T) {
			l := newLab(t)
			srv, url := httpServer(t, l, plainListen, endless(nil), proto.tls, nil)
			tr := httptransport.New(c)
			defer tr.CloseIdleConnections()
			errc := bodyErr(t, clientFor(srv, tr, proto.tls), url, proto.major)
			require.NoError(t, l.Vanish(lab.Server))
			start := time.Now()
			end, err := waitErr(t, errc, 3*either(idleBound, busyBound).bound)
			require.Error(t, err)
			expectWithin(t, proto.name+" large response", end.Sub(start), either(idleBound, busyBound))
		})
	}
	t.Run("HTTP/1.1/dial to a vanished address", func(t *testing.T) {
		l := newLab(t)
		_, url := httpServer(t, l, plainListen, endless(nil), false, nil)
		require.NoError(t, l.Vanish(lab.Server))
		start := time.Now()
		_, err := (&http.Client{Transport: httptransport.New(c)}).Get(url + "/small")
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		expectWithin(t, "HTTP/1.1 dial", time.Since(start), busyBound)
	})
}

func TestHTTPClientControl(t *testing.T) {
	t.Parallel()
	for _, proto := range []struct {
		name  string
		tls   bool
		major int
	}{{"HTTP/1.1", false, 1}, {"HTTP/2 TLS", true, 2}} {
		t.Run(proto.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			srv, url := httpServer(t, l, (&net.ListenConfig{}).Listen, endless(nil), proto.tls, nil)
			rec := &recorder{}
			tr := rec.wrap(http.DefaultTransport.(*http.Transport).Clone()) // stock: no health checks
			defer tr.CloseIdleConnections()
			getSmall(t, clientFor(srv, tr, proto.tls), url, proto.major)
			require.NoError(t, l.Vanish(lab.Server))
			stillEstablished(t, rawConn(t, rec.last(t)), time.Now())
		})
	}
}

// TestHTTPServer: an http.Server on a WrapListener finds a vanished client
// within the bound, idle or writing a response. It runs before the
// parallel tests, its cells beside each other only: its writer is held to
// the busy bound (see the package doc).
func TestHTTPServer(t *testing.T) {
	c := kit(t)
	idleBound, busyBound := windows(c)
	// wrapping listens with a stock net.ListenConfig and wraps its
	// listener with cfg.WrapListener.
	wrapping := func(cfg tuning.Config) func(context.Context, string, string) (net.Listener, error) {
		return func(ctx context.Context, network, addr string) (net.Listener, error) {
			ln, err := (&net.ListenConfig{}).Listen(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return cfg.WrapListener(ln), nil
		}
	}
	wrapped := wrapping(c)

	t.Run("idle keep-alive connection, client vanishes", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		closed := make(chan error, 1)
		var held tuning.Config
		_, url := httpServer(t, l, wrapped, endless(nil), false, func(conn net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				held, _ = tuning.Read(conn)
			case http.StateClosed:
				closed <- nil
			}
		})
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		getSmall(t, &http.Client{Transport: tr}, url, 1)
		assert.Equal(t, c.GuardHolds(), held, "accepted connection holds the config, guarded at rest")
		require.NoError(t, l.Vanish(lab.Client))
		start := time.Now()
		end, _ := waitErr(t, closed, 3*idleBound.bound)
		expectWithin(t, "http.Server idle", end.Sub(start), idleBound)
	})
	t.Run("large response being written, client vanishes", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		watched, ends := reapWatch(c)
		written := make(chan error, 1)
		_, url := httpServer(t, l, wrapping(watched), endless(written), false, nil)
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		bodyErr(t, &http.Client{Transport: tr}, url, 1)
		require.NoError(t, l.Vanish(lab.Client))
		start := time.Now()
		end, err := waitErr(t, written, 3*c.GuardBound())
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		var e tuning.Event
		select {
		case e = <-ends:
		case <-time.After(time.Second):
			t.Fatal("the Observer was not told of the end")
		}
		// The client stopped reading after one chunk: whether its window
		// had shut before it vanished is a race. A guarded writer's bound
		// with the window shut is GuardBound (the guard waits for four
		// unanswered probes), the busy bound with it open.
		if end.Sub(start) > busyBound.bound {
			t.Logf("past the busy bound; the kernel's state at the end: %+v", e.Kernel)
		}
		w := busyBound
		if e.Kernel.PeerWindow == 0 {
			w = window{busyBound.earliest, c.GuardBound()}
			t.Logf("the client's window was shut when it vanished: judged against GuardBound")
		}
		expectWithin(t, "http.Server writing", end.Sub(start), w)
	})
}

func TestHTTPServerControl(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	conns := make(chan net.Conn, 1)
	_, url := httpServer(t, l, (&net.ListenConfig{}).Listen, endless(nil), false, func(conn net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns <- conn
		}
	})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	getSmall(t, &http.Client{Transport: tr}, url, 1)
	require.NoError(t, l.Vanish(lab.Client))
	stillEstablished(t, rawConn(t, <-conns), time.Now())
}
