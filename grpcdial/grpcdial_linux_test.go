package grpcdial

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/ghostsock/ghostsock/internal/sockfind"
	"github.com/ghostsock/ghostsock/internal/testcert"
	"github.com/ghostsock/ghostsock/tuning"
)

func budget(t *testing.T, d time.Duration) tuning.Config {
	c, err := tuning.ForBudget(d)
	require.NoError(t, err)
	return c
}

// serve starts a stock gRPC server with the health service on ln.
func serve(t *testing.T, ln net.Listener, opts ...grpc.ServerOption) {
	srv := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
}

func check(t *testing.T, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// clientHeld reads what the kernel holds on the channel's socket to ln.
func clientHeld(t *testing.T, ln net.Listener) tuning.Config {
	held, err := sockfind.ReadPeer(ln.Addr(), ln.Addr())
	require.NoError(t, err)
	return held
}

func TestChannelSocketHoldsConfig(t *testing.T) {
	c := budget(t, 7*time.Second)
	cert, pool, err := testcert.New()
	require.NoError(t, err)
	for _, tc := range []struct {
		name, scheme string
		tls          bool
	}{
		{"passthrough insecure", "passthrough:///", false},
		{"dns insecure", "dns:///", false},
		{"dns tls", "dns:///", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			creds := insecure.NewCredentials()
			var sopts []grpc.ServerOption
			if tc.tls {
				sopts = append(sopts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
				creds = credentials.NewTLS(&tls.Config{RootCAs: pool})
			}
			serve(t, ln, sopts...)
			cc, err := grpc.NewClient(tc.scheme+ln.Addr().String(), append(Options(c), grpc.WithTransportCredentials(creds))...)
			require.NoError(t, err)
			defer cc.Close()
			require.NoError(t, check(t, cc))
			assert.Equal(t, c, clientHeld(t, ln))
		})
	}
}

// TestKeepaliveParamsAfterOptionsKeepUserTimeout: grpc-go sets its
// keepalive Timeout as the user timeout on a *net.TCPConn when the
// caller's WithKeepaliveParams turns pings back on; the kit's connections
// are *tuning.Conn, so the Config's user timeout stays (the pings do come
// back: that is the caller's choice).
func TestKeepaliveParamsAfterOptionsKeepUserTimeout(t *testing.T) {
	c := budget(t, 7*time.Second)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serve(t, ln, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}))
	opts := append(Options(c), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: time.Hour, Timeout: 33 * time.Second}))
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), opts...)
	require.NoError(t, err)
	defer cc.Close()
	require.NoError(t, check(t, cc))
	held := clientHeld(t, ln)
	assert.Equal(t, c.UserTimeout, held.UserTimeout, "grpc-go cannot replace the user timeout")
	assert.Equal(t, c.KeepAlive, held.KeepAlive, "keepalive probes stay")
}

func TestUnixTarget(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://192.0.2.1:9") // TEST-NET: a unix target never goes through it
	path := filepath.Join(t.TempDir(), "grpc.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	serve(t, ln)
	cc, err := grpc.NewClient("unix://"+path, append(Options(budget(t, 5*time.Second)), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	defer cc.Close()
	require.NoError(t, check(t, cc))
}

func TestInvalidConfigFailsRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serve(t, ln)
	bad := tuning.Config{UserTimeout: -time.Second}
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), append(Options(bad), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	defer cc.Close()
	err = check(t, cc)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Contains(t, err.Error(), "UserTimeout")
}

func TestParseAddr(t *testing.T) {
	for in, want := range map[string][2]string{
		"127.0.0.1:80":      {"tcp", "127.0.0.1:80"},
		"[::1]:80":          {"tcp", "[::1]:80"},
		"example.test:443":  {"tcp", "example.test:443"},
		"unix:///run/x.s":   {"unix", "/run/x.s"},
		"unix:rel/x.s":      {"unix", "rel/x.s"},
		"\x00abstract-name": {"unix", "@abstract-name"},
	} {
		network, address := parseAddr(in)
		assert.Equal(t, want, [2]string{network, address}, "%q", in)
	}
}

// A dialer of the caller's, given to Settings, is wrapped: it makes the
// connection, the socket gets the Config's options, the Observer counts
// it, and no proxy from the environment is used, as with stock grpc-go's
// WithContextDialer.
func TestSettingsDialIsWrapped(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://192.0.2.1:9") // TEST-NET: must not be used
	c := budget(t, 7*time.Second)
	var opened atomic.Int32
	c.Observer = tuning.NewObserver(func(e tuning.Event) {
		if e.Kind == tuning.EventOpened {
			opened.Add(1)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serve(t, ln)
	var dials atomic.Int32
	own := func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
		append(Settings{Dial: own}.Options(c), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	defer cc.Close()
	require.NoError(t, check(t, cc))
	assert.Equal(t, int32(1), dials.Load(), "the caller's dialer made the connection")
	assert.Equal(t, int32(1), opened.Load(), "counted once")
	held := clientHeld(t, ln)
	c.Observer = nil
	assert.Equal(t, c, held, "the options are on its socket")
}
