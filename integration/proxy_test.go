//go:build linux

package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/integration/testsvc"
)

// envStockClient makes the test binary a stock grpc-go client: it makes
// one RPC to the target in the variable's value, with whatever proxy the
// environment gives it, prints the error or "ok", and exits 0 or 1.
const envStockClient = "GHOSTSOCK_TEST_STOCK_CLIENT"

func stockClient(target string) {
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = unary(ctx, testpb.NewTestServiceClient(cc))
		cancel()
		cc.Close()
	}
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("ok")
	os.Exit(0)
}

// runStockClient runs a stock grpc-go client process with env added.
func runStockClient(t *testing.T, target string, env ...string) error {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), env...), envStockClient+"="+target)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("stock client: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tinyproxy runs the distribution's tinyproxy on the proxy host, with
// Basic credentials ghost:sock, and returns its address and its log.
func tinyproxy(t *testing.T, p *lab.ProxyHost) (addr, logPath string) {
	t.Helper()
	bin := requireTool(t, "tinyproxy", "tinyproxy")
	dir := t.TempDir()
	logPath = filepath.Join(dir, "tinyproxy.log")
	addr = net.JoinHostPort(p.Addr.String(), "3128")
	conf := filepath.Join(dir, "tinyproxy.conf")
	var err error
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(
		"Port 3128\nListen %s\nTimeout 600\nLogFile %q\nLogLevel Info\nMaxClients 100\nBasicAuth ghost sock\n",
		p.Addr, logPath)), 0o644))
	var cmd *exec.Cmd
	p.In(func() { // the process inherits the proxy host's namespace
		cmd = exec.Command(bin, "-d", "-c", conf)
		err = cmd.Start()
	})
	require.NoError(t, err)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "Accepting connections")
	}, 10*time.Second, 20*time.Millisecond, "tinyproxy did not start")
	return addr, logPath
}

// peers records the address each connection to a gRPC server came from.
type peers struct {
	mu    sync.Mutex
	addrs []string
}

func (p *peers) TagConn(ctx context.Context, i *stats.ConnTagInfo) context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	host, _, _ := net.SplitHostPort(i.RemoteAddr.String())
	p.addrs = append(p.addrs, host)
	return ctx
}
func (*peers) HandleConn(context.Context, stats.ConnStats)                     {}
func (*peers) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (*peers) HandleRPC(context.Context, stats.RPCStats)                       {}

// since returns the peers recorded after the first n.
func (p *peers) since(n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.addrs[n:]...)
}

func (p *peers) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.addrs)
}

// TestGRPCThroughProxy: with a real proxy (tinyproxy) on a host of its
// own between client and server, a grpcdial client takes the route the
// stock grpc-go client takes under the same environment, sends the
// proxy's credentials, and finds a vanished proxy within the bound. It sets
// the process's environment, which grpcdial reads at each new target, so
// it runs alone: not in parallel (t.Setenv refuses that anyway).
func TestGRPCThroughProxy(t *testing.T) {
	// http.ProxyFromEnvironment reads the environment once per process:
	// read it now, before this test sets a proxy, so that no other test's
	// HTTP client takes it.
	http.ProxyFromEnvironment(&http.Request{URL: &url.URL{Scheme: "https", Host: "example.com"}})
	c := kit(t)
	idleW, busyW := windows(c)
	l := newLab(t)
	px, err := l.AddProxyHost()
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	proxyAddr, proxyLog := tinyproxy(t, px)
	seen := &peers{}
	ln, err := l.Listen(func(ctx context.Context, network, addr string) (net.Listener, error) {
		return grpcserver.Listen(ctx, network, addr, c)
	}, "tcp", l.ServerAddrPort(0))
	require.NoError(t, err)
	srv := grpc.NewServer(append(grpcserver.Options(c), grpc.StatsHandler(seen))...)
	testsvc.Register(srv)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	target := "dns:///" + ln.Addr().String()
	good := "http://ghost:sock@" + proxyAddr
	client := func(t *testing.T) testpb.TestServiceClient {
		cc, err := grpc.NewClient(target, append(grpcdial.Options(c), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		require.NoError(t, err)
		t.Cleanup(func() { cc.Close() })
		return testpb.NewTestServiceClient(cc)
	}

	for _, tc := range []struct {
		name    string
		env     map[string]string
		ok      bool
		peer    string // the address the server sees, when ok
		connect bool   // the proxy logs a CONNECT to the server
	}{
		{"HTTPS_PROXY with credentials: through the proxy", map[string]string{"HTTPS_PROXY": good, "NO_PROXY": ""}, true, px.ServerSide.String(), true},
		{"https_proxy, lower case, as grpc-go reads it too", map[string]string{"https_proxy": good, "HTTPS_PROXY": "", "NO_PROXY": ""}, true, px.ServerSide.String(), true},
		{"NO_PROXY names the server: direct", map[string]string{"HTTPS_PROXY": good, "NO_PROXY": l.ServerAddr.String()}, true, l.ClientAddr.String(), false},
		{"no proxy in the environment: direct", map[string]string{"HTTPS_PROXY": "", "https_proxy": "", "NO_PROXY": ""}, true, l.ClientAddr.String(), false},
		{"wrong credentials: the proxy refuses both", map[string]string{"HTTPS_PROXY": "http://ghost:nope@" + proxyAddr, "NO_PROXY": ""}, false, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			for k, v := range tc.env {
				t.Setenv(k, v)
				env = append(env, k+"="+v)
			}
			logBefore, _ := os.ReadFile(proxyLog)
			n := seen.count()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			errKit := unary(ctx, client(t))
			errStock := runStockClient(t, target, env...)
			if !tc.ok {
				assert.Equal(t, codes.Unavailable, status.Code(errKit))
				// tinyproxy 1.11 answers a CONNECT with wrong credentials
				// 401, not 407.
				assert.ErrorContains(t, errKit, "proxy CONNECT failed")
				assert.Regexp(t, "40[17]", errKit.Error(), "grpcdial: the proxy's refusal")
				assert.Error(t, errStock, "the stock client is refused as well")
				return
			}
			require.NoError(t, errKit, "grpcdial")
			require.NoError(t, errStock, "stock grpc-go")
			got := seen.since(n)
			require.Len(t, got, 2, "one connection from each client")
			assert.Equal(t, tc.peer, got[0], "grpcdial's route")
			assert.Equal(t, tc.peer, got[1], "stock grpc-go's route")
			logNow, _ := os.ReadFile(proxyLog)
			connects := strings.Count(string(logNow[len(logBefore):]), "CONNECT "+ln.Addr().String())
			if tc.connect {
				assert.Equal(t, 2, connects, "the proxy's log shows each client's CONNECT")
			} else {
				assert.Zero(t, connects)
			}
		})
	}

	t.Run("the proxy vanishes mid-stream: found within the bound", func(t *testing.T) {
		t.Setenv("HTTPS_PROXY", good)
		t.Setenv("NO_PROXY", "")
		errc := streamErr(t, t.Context(), client(t))
		require.NoError(t, px.Vanish())
		start := time.Now()
		w := either(idleW, busyW) // the client's last WINDOW_UPDATE may be unacknowledged
		end, err := waitErr(t, errc, 3*w.bound)
		assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		expectWithin(t, "gRPC stream through a vanished proxy", end.Sub(start), w)
	})
}
