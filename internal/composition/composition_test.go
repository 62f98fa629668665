package composition_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/netutil"

	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/internal/testcert"
	"github.com/ghostsock/ghostsock/tuning"
)

// budget3 is the Config every case uses, and budget5 the second one that
// the "two Configs" cases layer over it.
var budget3, budget5 = mustBudget(3 * time.Second), mustBudget(5 * time.Second)

func mustBudget(d time.Duration) tuning.Config {
	c, err := tuning.ForBudget(d)
	if err != nil {
		panic(err)
	}
	return c
}

// counter is an Observer that keeps every event.
type counter struct {
	mu     sync.Mutex
	events []tuning.Event
}

func (c *counter) Observe(e tuning.Event) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
}

func (c *counter) count(k tuning.EventKind) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// observed is c with a fresh counter.
func observed(c tuning.Config) (tuning.Config, *counter) {
	n := &counter{}
	c.Observer = n
	return c, n
}

// socketOptions is what tuning.Read reads back for c's options, on a
// connection the guard watches or not.
func socketOptions(c tuning.Config, guarded bool) tuning.Config {
	if guarded {
		c = c.GuardHolds()
	}
	return tuning.Config{UserTimeout: c.UserTimeout, KeepAlive: c.KeepAlive, RTOMax: c.RTOMax}
}

// kitConn finds the kit's *tuning.Conn beneath conn, if any: through
// NetConn, and, for the test's sake, through a wrapper that embeds its
// net.Conn without saying so (netutil.LimitListener's).
func kitConn(conn net.Conn) *tuning.Conn {
	for conn != nil {
		if k, ok := conn.(*tuning.Conn); ok {
			return k
		}
		if w, ok := conn.(interface{ NetConn() net.Conn }); ok {
			conn = w.NetConn()
			continue
		}
		v := reflect.Indirect(reflect.ValueOf(conn))
		if v.Kind() != reflect.Struct || !v.FieldByName("Conn").IsValid() {
			return nil
		}
		conn, _ = v.FieldByName("Conn").Interface().(net.Conn)
	}
	return nil
}

// checkConn checks one connection the kit handed out: its socket carries
// want's options (the guard disarmed once the response is acknowledged
// and its linger is over: within a user timeout and a half of the last
// write), and it is guarded or not as the case says.
func checkConn(t *testing.T, conn net.Conn, want tuning.Config, guarded bool) {
	t.Helper()
	k := kitConn(conn)
	require.NotNil(t, k, "%T is no kit connection", conn)
	assert.Equal(t, guarded, k.Guarded(), "guarded")
	wantHeld := socketOptions(want, guarded)
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		got, err := tuning.Read(k)
		assert.NoError(c, err)
		assert.Equal(c, wantHeld, got, "the socket holds the Config's options")
	}, 3*want.UserTimeout/2+2*time.Second, 5*time.Millisecond)
}

// server is an http.Server on ln that answers "ok" and records the
// connections it was handed.
type server struct {
	srv    *http.Server
	served chan error
	mu     sync.Mutex
	conns  []net.Conn
}

func serve(t *testing.T, ln net.Listener, tlsCfg *tls.Config) *server {
	s := &server{served: make(chan error, 1)}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.mu.Lock()
				s.conns = append(s.conns, c)
				s.mu.Unlock()
			}
		},
		ErrorLog: nil,
	}
	go func() {
		if tlsCfg != nil {
			s.served <- s.srv.Serve(tls.NewListener(ln, tlsCfg))
			return
		}
		s.served <- s.srv.Serve(ln)
	}()
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *server) handed() []net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Conn(nil), s.conns...)
}

// stillServing fails if Serve has returned.
func (s *server) stillServing(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.served:
		t.Fatalf("http.Serve returned: %v", err)
	default:
	}
}

// get makes n requests on fresh connections and returns their errors;
// after each successful one, while its connection is still open, check
// runs if set.
func get(t *testing.T, url string, tr *http.Transport, n int, check func()) []error {
	t.Helper()
	var errs []error
	for range n {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			var body []byte
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && string(body) != "ok" {
				err = fmt.Errorf("body %q", body)
			}
		}
		cancel()
		if err == nil && check != nil {
			check()
		}
		tr.CloseIdleConnections()
		errs = append(errs, err)
	}
	return errs
}

// hidingListener hands out conns that hide their socket, as a PROXY
// protocol or connection-counting wrapper without NetConn does.
type hidingListener struct{ net.Listener }

type hidingConn struct{ net.Conn }

func (l hidingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return hidingConn{c}, nil
}

// metricsConn is a user's wrapper that says what it wraps.
type metricsConn struct{ net.Conn }

func (m metricsConn) NetConn() net.Conn { return m.Conn }

func tcpListen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// drainingListener is a plain listener whose connections are read to EOF
// and closed, until the test ends.
func drainingListener(t *testing.T) net.Listener {
	ln := tcpListen(t)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return ln
}

func kitListen(t *testing.T, c tuning.Config) net.Listener {
	ln, err := c.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// TestListenerMatrix serves HTTP/1.1 on every composition of listeners.
// A working case serves every request, keeps http.Serve serving, hands out
// connections that carry the Config's options (the outer Config's where
// two are layered), guarded where the guard applies, and tells the
// Observer of each connection once when it opens and once when it ends.
// A refused case closes each connection with a temporary error naming the
// fix, and Serve goes on.
func TestListenerMatrix(t *testing.T) {
	cert, pool, err := testcert.New()
	require.NoError(t, err)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}}
	bare := budget3
	bare.NoGuard = true

	for _, tc := range []struct {
		name    string
		build   func(t *testing.T, c tuning.Config) net.Listener
		c       tuning.Config // the Config whose options the socket must carry (and whose Observer counts)
		guarded bool
		tls     bool   // TLS on top of the kit, by the server
		refused string // the error Accept must give, temporary; "" for a working case
	}{
		{"Listen", func(t *testing.T, c tuning.Config) net.Listener { return kitListen(t, c) }, budget3, true, false, ""},
		{"WrapListener", func(t *testing.T, c tuning.Config) net.Listener { return c.WrapListener(tcpListen(t)) }, budget3, true, false, ""},
		{"GuardListener(Listen)", func(t *testing.T, c tuning.Config) net.Listener { return c.GuardListener(kitListen(t, c)) }, budget3, true, false, ""},
		{"WrapListener(Listen)", func(t *testing.T, c tuning.Config) net.Listener { return c.WrapListener(kitListen(t, c)) }, budget3, true, false, ""},
		{"WrapListener(WrapListener)", func(t *testing.T, c tuning.Config) net.Listener { return c.WrapListener(c.WrapListener(tcpListen(t))) }, budget3, true, false, ""},
		{"GuardListener(WrapListener)", func(t *testing.T, c tuning.Config) net.Listener { return c.GuardListener(c.WrapListener(tcpListen(t))) }, budget3, true, false, ""},
		{"WrapListener(GuardListener(Listen))", func(t *testing.T, c tuning.Config) net.Listener {
			return c.WrapListener(c.GuardListener(kitListen(t, c)))
		}, budget3, true, false, ""},
		{"NoGuard: Listen", func(t *testing.T, c tuning.Config) net.Listener { return kitListen(t, c) }, bare, false, false, ""},
		{"NoGuard: GuardListener(Listen) adds the guard", func(t *testing.T, c tuning.Config) net.Listener { return c.GuardListener(kitListen(t, c)) }, bare, true, false, ""},
		{"grpcserver.WrapListener(Listen): the guard stays", func(t *testing.T, c tuning.Config) net.Listener {
			return grpcserver.WrapListener(kitListen(t, c), c)
		}, budget3, true, false, ""},
		{"TLS over the kit: tls.NewListener(Listen)", func(t *testing.T, c tuning.Config) net.Listener { return kitListen(t, c) }, budget3, true, true, ""},
		{"two Configs: budget5.WrapListener(budget3.Listen)", func(t *testing.T, c tuning.Config) net.Listener {
			return c.WrapListener(kitListen(t, budget3))
		}, budget5, true, false, ""},
		{"two Configs: budget5.WrapListener(budget3.WrapListener)", func(t *testing.T, c tuning.Config) net.Listener {
			return c.WrapListener(budget3.WrapListener(tcpListen(t)))
		}, budget5, true, false, ""},
		{"limit over the kit: LimitListener(Listen)", func(t *testing.T, c tuning.Config) net.Listener {
			return netutil.LimitListener(kitListen(t, c), 10)
		}, budget3, true, false, ""},
		{"kit over a limit: WrapListener(LimitListener)", func(t *testing.T, c tuning.Config) net.Listener {
			return c.WrapListener(netutil.LimitListener(tcpListen(t), 10))
		}, budget3, false, false, "hides its TCP socket"},
		{"kit over a hiding wrapper", func(t *testing.T, c tuning.Config) net.Listener {
			return c.WrapListener(hidingListener{tcpListen(t)})
		}, budget3, false, false, "hides its TCP socket"},
		{"kit over TLS: WrapListener(tls.NewListener)", func(t *testing.T, c tuning.Config) net.Listener {
			return c.WrapListener(tls.NewListener(tcpListen(t), serverTLS))
		}, budget3, false, false, "cannot guard beneath *tls.Conn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, n := observed(tc.c)
			ln := tc.build(t, c)
			defer ln.Close()
			var tlsCfg *tls.Config
			url := "http://" + ln.Addr().String()
			tr := &http.Transport{}
			if tc.tls {
				tlsCfg, url = serverTLS, "https://"+ln.Addr().String()
				tr.TLSClientConfig = &tls.Config{RootCAs: pool}
			}
			if tc.refused != "" {
				// The listener's own Accept error, seen directly.
				probe := tc.build(t, c)
				go func() {
					if c, err := net.Dial("tcp", probe.Addr().String()); err == nil {
						defer c.Close()
						io.Copy(io.Discard, c)
					}
				}()
				_, err := probe.Accept()
				probe.Close()
				var ne net.Error
				require.ErrorAs(t, err, &ne)
				assert.True(t, ne.Temporary(), "temporary, so that http.Serve goes on") //nolint:staticcheck // Temporary is what servers read
				var we *tuning.WrapperError
				assert.ErrorAs(t, err, &we)
				assert.ErrorIs(t, err, tuning.ErrWrapped)
				assert.Contains(t, err.Error(), tc.refused)
				assert.Contains(t, err.Error(), "put the kit beneath")
			}
			s := serve(t, ln, tlsCfg)
			errs := get(t, url, tr, 3, func() {
				conns := s.handed()
				conn := conns[len(conns)-1]
				checkConn(t, conn, tc.c, tc.guarded)
				assert.Equal(t, tc.c.UserTimeout, kitConn(conn).Config().UserTimeout, "Conn.Config is the outer Config")
			})
			s.stillServing(t)
			if tc.refused != "" {
				for _, err := range errs {
					assert.Error(t, err, "a refused connection serves nothing")
				}
				assert.Zero(t, n.count(tuning.EventOpened))
				return
			}
			for _, err := range errs {
				require.NoError(t, err)
			}
			require.Len(t, s.handed(), 3)
			assert.Equal(t, 3, n.count(tuning.EventOpened), "one opened event per connection")
			s.srv.Close()
			assert.Eventually(t, func() bool { return n.count(tuning.EventEnded) == 3 }, 2*time.Second, 10*time.Millisecond,
				"one ended event per connection, got %d", n.count(tuning.EventEnded))
		})
	}
}

// TestNoGuardOverTLS: with NoGuard the kit takes a TLS listener's
// connections as they are, the options set on the socket beneath.
func TestNoGuardOverTLS(t *testing.T) {
	cert, pool, err := testcert.New()
	require.NoError(t, err)
	bare := budget3
	bare.NoGuard = true
	ln := bare.WrapListener(tls.NewListener(tcpListen(t), &tls.Config{Certificates: []tls.Certificate{cert}}))
	defer ln.Close()
	s := serve(t, ln, nil)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	for _, err := range get(t, "https://"+ln.Addr().String(), tr, 2, func() {
		conns := s.handed()
		conn := conns[len(conns)-1]
		require.IsType(t, &tls.Conn{}, conn, "the wrapper is handed out as it is")
		got, err := tuning.Read(conn)
		require.NoError(t, err)
		assert.Equal(t, socketOptions(budget3, false), got)
	}) {
		require.NoError(t, err)
	}
}

// TestAcceptFailuresNeverStopServe injects every kind of per-connection
// failure between working connections: http.Serve keeps serving.
func TestAcceptFailuresNeverStopServe(t *testing.T) {
	inner := tcpListen(t)
	var mu sync.Mutex
	k := 0
	faulty := listenerFunc{inner, func() (net.Conn, error) {
		conn, err := inner.Accept()
		if err != nil {
			return nil, err
		}
		mu.Lock()
		k++
		i := k
		mu.Unlock()
		switch i % 3 {
		case 1:
			return hidingConn{conn}, nil // a hidden socket
		case 2:
			conn.Close() // closed before the options are set: setsockopt fails
			return conn, nil
		}
		return conn, nil
	}}
	ln := budget3.WrapListener(faulty)
	s := serve(t, ln, nil)
	ok := 0
	for _, err := range get(t, "http://"+inner.Addr().String(), &http.Transport{}, 9, nil) {
		if err == nil {
			ok++
		}
	}
	s.stillServing(t)
	assert.Equal(t, 3, ok, "every third connection is a good one, and is served")
}

type listenerFunc struct {
	net.Listener
	accept func() (net.Conn, error)
}

func (l listenerFunc) Accept() (net.Conn, error) { return l.accept() }

// TestTransportMatrix makes requests through every composition of the
// kit's dial functions and transports: each connection is handled once,
// carries the Config's options, is guarded where the guard applies, and
// is observed once; a user dial that returns a wrapper is refused at the
// dial with an error naming the fix.
func TestTransportMatrix(t *testing.T) {
	ln := tcpListen(t)
	defer ln.Close()
	s := serve(t, ln, nil)
	url := "http://" + ln.Addr().String()
	bare := budget3
	bare.NoGuard = true
	plain := (&net.Dialer{}).DialContext

	for _, tc := range []struct {
		name    string
		build   func(c tuning.Config) *http.Transport
		c       tuning.Config
		guarded bool
		refused string
	}{
		{"New", func(c tuning.Config) *http.Transport { return httptransport.New(c) }, budget3, true, ""},
		{"Harden(New)", func(c tuning.Config) *http.Transport { t := httptransport.New(c); httptransport.Harden(t, c); return t }, budget3, true, ""},
		{"Harden twice", func(c tuning.Config) *http.Transport {
			t := &http.Transport{}
			httptransport.Harden(t, c)
			httptransport.Harden(t, c)
			return t
		}, budget3, true, ""},
		{"Harden(DialContext: DialFunc)", func(c tuning.Config) *http.Transport {
			t := &http.Transport{DialContext: c.DialFunc(nil)}
			httptransport.Harden(t, c)
			return t
		}, budget3, true, ""},
		{"GuardDialContext(DialFunc)", func(c tuning.Config) *http.Transport {
			return &http.Transport{DialContext: c.GuardDialContext(c.DialFunc(nil))}
		}, budget3, true, ""},
		{"DialFunc(DialFunc)", func(c tuning.Config) *http.Transport {
			return &http.Transport{DialContext: c.DialFunc(c.DialFunc(nil))}
		}, budget3, true, ""},
		{"WrapDialContext(DialFunc)", func(c tuning.Config) *http.Transport {
			return &http.Transport{DialContext: c.WrapDialContext(c.DialFunc(nil))}
		}, budget3, true, ""},
		{"DialFunc(plain dialer)", func(c tuning.Config) *http.Transport { return &http.Transport{DialContext: c.DialFunc(plain)} }, budget3, true, ""},
		{"WrapDialContext(plain dialer): never guards", func(c tuning.Config) *http.Transport {
			return &http.Transport{DialContext: c.WrapDialContext(plain)}
		}, budget3, false, ""},
		{"NoGuard: New", func(c tuning.Config) *http.Transport { return httptransport.New(c) }, bare, false, ""},
		{"two Configs: Harden(New(budget3), budget5)", func(c tuning.Config) *http.Transport {
			t := httptransport.New(budget3)
			httptransport.Harden(t, c)
			return t
		}, budget5, true, ""},
		{"deprecated Dial", func(c tuning.Config) *http.Transport {
			t := &http.Transport{Dial: func(network, addr string) (net.Conn, error) { return net.Dial(network, addr) }} //nolint:staticcheck // the deprecated field is the case
			httptransport.Harden(t, c)
			return t
		}, budget3, true, ""},
		{"user dial returns a metrics wrapper", func(c tuning.Config) *http.Transport {
			return &http.Transport{DialContext: c.DialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := plain(ctx, network, addr)
				return metricsConn{conn}, err
			})}
		}, budget3, false, "cannot guard beneath composition_test.metricsConn"},
		{"user dial returns a hiding wrapper", func(c tuning.Config) *http.Transport {
			return &http.Transport{DialContext: c.DialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := plain(ctx, network, addr)
				return hidingConn{conn}, err
			})}
		}, budget3, false, "hides its TCP socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, n := observed(tc.c)
			tr := tc.build(c)
			var mu sync.Mutex
			var dialed []net.Conn
			inner := tr.DialContext
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := inner(ctx, network, addr)
				if err == nil {
					mu.Lock()
					dialed = append(dialed, conn)
					mu.Unlock()
				}
				return conn, err
			}
			errs := get(t, url, tr, 3, func() {
				mu.Lock()
				conn := dialed[len(dialed)-1]
				mu.Unlock()
				require.IsType(t, &tuning.Conn{}, conn)
				checkConn(t, conn, tc.c, tc.guarded)
			})
			if tc.refused != "" {
				for _, err := range errs {
					var we *tuning.WrapperError
					require.ErrorAs(t, err, &we)
					assert.Contains(t, err.Error(), tc.refused)
					assert.Contains(t, err.Error(), "put the kit beneath")
				}
				return
			}
			for _, err := range errs {
				require.NoError(t, err)
			}
			require.Len(t, dialed, 3)
			assert.Equal(t, 3, n.count(tuning.EventOpened), "one opened event per connection")
			assert.Eventually(t, func() bool { return n.count(tuning.EventEnded) == 3 }, 2*time.Second, 10*time.Millisecond,
				"one ended event per connection, got %d", n.count(tuning.EventEnded))
		})
	}
	s.stillServing(t)
}

// TestMetricsWrapperWithNoGuard: a user's wrapper with NetConn keeps its
// type and gets the options beneath it.
func TestMetricsWrapperWithNoGuard(t *testing.T) {
	ln := tcpListen(t)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	bare := budget3
	bare.NoGuard = true
	dial := bare.DialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := net.Dial(network, addr)
		return metricsConn{conn}, err
	})
	conn, err := dial(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.IsType(t, metricsConn{}, conn)
	got, err := tuning.Read(conn)
	require.NoError(t, err)
	assert.Equal(t, socketOptions(budget3, false), got)
}

// TestDroppedConnsAreReportedEnded: connections dropped without Close are
// collected, closed and reported ended, once each.
func TestDroppedConnsAreReportedEnded(t *testing.T) {
	ln := drainingListener(t)
	c, n := observed(budget3)
	dial := c.WrapDialContext(c.DialFunc(nil))
	const conns = 10
	for range conns {
		conn, err := dial(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		_, err = conn.Write([]byte("x"))
		require.NoError(t, err)
	}
	assert.Equal(t, conns, n.count(tuning.EventOpened), "wrapped twice, opened once each")
	assert.Eventually(t, func() bool {
		runtime.GC()
		return n.count(tuning.EventEnded) == conns
	}, 5*time.Second, 20*time.Millisecond, "every dropped conn reported ended, got %d", n.count(tuning.EventEnded))
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.events {
		if e.Kind == tuning.EventEnded {
			assert.True(t, e.Dropped)
			assert.Equal(t, tuning.CauseClosed, e.Cause)
		}
	}
}

// pausedReaderSurvives writes 16 MiB to a reader that pauses for twice
// the user timeout first: a guarded writer must keep its connection.
// reconfigure, if set, runs while the guard is armed.
func pausedReaderSurvives(t *testing.T, writer, reader net.Conn, ut time.Duration, reconfigure func()) {
	t.Helper()
	const total = 16 << 20
	wrote := make(chan error, 1)
	go func() {
		_, err := writer.Write(make([]byte, total))
		wrote <- err
	}()
	time.Sleep(ut / 2)
	if reconfigure != nil {
		reconfigure()
	}
	time.Sleep(2*ut - ut/2)
	n, err := io.CopyN(io.Discard, reader, total)
	require.NoError(t, err, "read %d of %d", n, total)
	require.NoError(t, <-wrote, "the paused reader's writer kept its connection")
}

// TestLayeredGuardSurvivesPausedReader: a guarded connection through
// layered entry points, and one reconfigured by Apply while its guard is
// armed, keep a live reader that pauses for twice the user timeout.
func TestLayeredGuardSurvivesPausedReader(t *testing.T) {
	ut := budget3.UserTimeout
	t.Run("WrapListener(Listen), accepted writer", func(t *testing.T) {
		ln := budget3.WrapListener(kitListen(t, budget3))
		defer ln.Close()
		reader, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer reader.Close()
		writer, err := ln.Accept()
		require.NoError(t, err)
		defer writer.Close()
		pausedReaderSurvives(t, writer, reader, ut, nil)
	})
	t.Run("Apply of another Config during an armed guard", func(t *testing.T) {
		ln := kitListen(t, budget3)
		defer ln.Close()
		reader, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer reader.Close()
		writer, err := ln.Accept()
		require.NoError(t, err)
		defer writer.Close()
		pausedReaderSurvives(t, writer, reader, ut, func() {
			require.NoError(t, budget5.Apply(writer))
			got, err := tuning.Read(writer)
			require.NoError(t, err)
			assert.Zero(t, got.UserTimeout, "armed: the guard still holds 0")
			assert.Equal(t, budget5.KeepAlive, got.KeepAlive, "the new keepalive is set at once")
		})
		checkConn(t, writer, budget5, true)
		assert.Equal(t, budget5, writer.(*tuning.Conn).Config())
	})
}

// TestInspectAfterLayering: Inspect sees the outer Config's guard.
func TestInspectAfterLayering(t *testing.T) {
	ln := budget5.WrapListener(kitListen(t, budget3))
	defer ln.Close()
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	conn, err := ln.Accept()
	require.NoError(t, err)
	defer conn.Close()
	s, err := tuning.Inspect(conn)
	require.NoError(t, err)
	assert.True(t, s.Guarded)
	assert.Equal(t, budget5.UserTimeout, s.Options.UserTimeout)
}

// embedded is a user's wrapper that embeds the kit's *Conn: it inherits
// NetConn, but must still be recognised as the kit's.
type embedded struct{ *tuning.Conn }

// TestReviewCases: the NetConn of a dropped Conn stays open; a struct
// embedding a Conn is the kit's for Apply (an armed guard keeps holding
// 0); an RTOMax cleared by Apply is cleared on the socket.
func TestReviewCases(t *testing.T) {
	ln := drainingListener(t)
	t.Run("NetConn kept, Conn dropped: the socket stays open", func(t *testing.T) {
		conn, err := budget3.DialFunc(nil)(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		tcp := conn.(*tuning.Conn).NetConn().(*net.TCPConn)
		conn = nil
		for range 5 {
			runtime.GC()
		}
		_, err = tcp.Write([]byte("still mine"))
		assert.NoError(t, err)
		tcp.Close()
	})
	t.Run("a struct embedding a Conn is the kit's", func(t *testing.T) {
		bare := budget3
		bare.NoGuard = true
		conn, err := bare.DialFunc(nil)(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		wrapped := embedded{conn.(*tuning.Conn)}
		require.NoError(t, budget5.Apply(wrapped))
		assert.Equal(t, budget5, conn.(*tuning.Conn).Config(), "Apply reached the Conn, not the socket behind it")
		dial := budget3.DialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) { return wrapped, nil })
		got, err := dial(t.Context(), "tcp", "ignored")
		require.NoError(t, err, "a layer over the embedding struct adopts the Conn beneath it")
		assert.True(t, conn.(*tuning.Conn).Guarded(), "the default layer added its guard")
		assert.Equal(t, wrapped, got)
	})
	t.Run("RTOMax cleared", func(t *testing.T) {
		capped := budget3
		capped.NoGuard = true
		capped.RTOMax = 2 * time.Second
		conn, err := capped.DialFunc(nil)(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		capped.RTOMax = 0
		require.NoError(t, capped.Apply(conn))
		got, err := tuning.Read(conn)
		require.NoError(t, err)
		assert.Zero(t, got.RTOMax, "the kernel's cap is back")
	})
}
