//go:build linux

package integration

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/tuning"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/integration/testsvc"
)

// envServerRole makes the test binary a server process on the listener
// passed as fd 3: "hold" accepts, says so with one byte, and never reads;
// "grpc" serves testsvc.
const envServerRole = "GHOSTSOCK_TEST_SERVER"

// held keeps the "hold" role's connections reachable, so that no
// finalizer closes them before the process is killed.
var held []net.Conn

func serverProcess(role string) {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		os.Exit(3)
	}
	switch role {
	case "hold":
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(0)
			}
			c.Write([]byte{'A'})
			held = append(held, c)
		}
	case "grpc":
		srv := grpc.NewServer()
		testsvc.Register(srv)
		srv.Serve(ln)
	}
	os.Exit(0)
}

// startServerProcess runs this test binary as a server process on ln,
// which stays open in the test so that a restarted process can take it
// over. The process is killed when the test ends.
func startServerProcess(t *testing.T, ln net.Listener, role string) *exec.Cmd {
	t.Helper()
	f, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	defer f.Close()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envServerRole+"="+role)
	cmd.ExtraFiles = []*os.File{f}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// prompt is how soon a fault the kernel hears of (RST, FIN, ICMP) must
// reach the application: a small part of the budget, nowhere near it.
const prompt = budget / 4

func TestServerProcessKilled(t *testing.T) {
	t.Parallel()
	c := kit(t)
	t.Run("raw TCP: RST reaches the client at once", func(t *testing.T) {
		l := newLab(t)
		ln, err := l.Listen((&net.ListenConfig{}).Listen, "tcp", l.ServerAddrPort(0))
		require.NoError(t, err)
		defer ln.Close()
		ln.(*net.TCPListener).SetDeadline(time.Now()) // the test's copy never accepts
		server := startServerProcess(t, ln, "hold")
		client, err := c.Dialer().Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer client.Close()
		_, err = client.Write([]byte("never read")) // unread data: the dying kernel resets
		require.NoError(t, err)
		// Wait until the process holds the connection: one still in the
		// accept queue would outlive it, since the test keeps a copy of
		// the listening socket.
		client.SetReadDeadline(time.Now().Add(time.Minute))
		_, err = io.ReadFull(client, make([]byte, 1))
		require.NoError(t, err, "the server process did not accept")
		client.SetReadDeadline(time.Time{})
		errc := readErr(client)
		killed := time.Now()
		require.NoError(t, server.Process.Kill())
		end, err := waitErr(t, errc, budget)
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		assert.Equal(t, tuning.CauseReset, tuning.Classify(err))
		t.Logf("raw TCP: %v after the server process was killed", end.Sub(killed).Round(time.Millisecond))
		assert.Less(t, end.Sub(killed), prompt)
	})
	t.Run("gRPC: in-flight stream fails, restarted server serves the same ClientConn", func(t *testing.T) {
		l := newLab(t)
		ln, err := l.Listen((&net.ListenConfig{}).Listen, "tcp", l.ServerAddrPort(0))
		require.NoError(t, err)
		defer ln.Close()
		ln.(*net.TCPListener).SetDeadline(time.Now())
		server := startServerProcess(t, ln, "grpc")
		client := grpcClient(t, ln.Addr().String(), grpcdial.Options(c)...)
		errc := streamErr(t, t.Context(), client)
		killed := time.Now()
		require.NoError(t, server.Process.Kill())
		end, err := waitErr(t, errc, budget)
		assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		// The dying kernel ends the stream with FIN or RST, as it finds
		// unread data or not: grpc-go's status keeps the text of either.
		assert.Contains(t, []tuning.Cause{tuning.CauseReset, tuning.CauseClosed}, tuning.Classify(err), "Classify(%v)", err)
		t.Logf("gRPC stream: %v after the server process was killed: %v", end.Sub(killed).Round(time.Millisecond), err)
		assert.Less(t, end.Sub(killed), prompt)

		server.Wait()
		startServerProcess(t, ln, "grpc")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.WaitForReady(true))
		require.NoError(t, err, "the same ClientConn reaches the restarted server")
	})
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	c := kit(t)
	l := newLab(t)
	ln, err := l.Listen((&net.ListenConfig{}).Listen, "tcp", l.ServerAddrPort(0))
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: the server's kernel answers RST
	start := time.Now()
	_, err = c.Dialer().Dial("tcp", addr)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.Equal(t, tuning.CauseRefused, tuning.Classify(err))
	assert.Less(t, time.Since(start), prompt)

	client := grpcClient(t, addr, grpcdial.Options(c)...)
	start = time.Now()
	_, err = client.UnaryCall(t.Context(), &testpb.SimpleRequest{})
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.Equal(t, tuning.CauseRefused, tuning.Classify(err), "Classify(%v)", err)
	assert.Less(t, time.Since(start), prompt)

	_, err = (&http.Client{Transport: httptransport.New(c)}).Get("http://" + addr + "/")
	assert.Equal(t, tuning.CauseRefused, tuning.Classify(err), "Classify(%v)", err)
}

func TestPeerVanishesDuringTLSHandshake(t *testing.T) {
	t.Parallel()
	c := kit(t)
	_, busyBound := windows(c)
	l := newLab(t)
	// The server host accepts TCP but vanishes before answering the
	// ClientHello: the handshake waits on unacknowledged data.
	ln, err := l.Listen((&net.ListenConfig{}).Listen, "tcp", l.ServerAddrPort(0))
	require.NoError(t, err)
	defer ln.Close()
	conn, err := c.Dialer().Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, l.Vanish(lab.Server))
	start := time.Now()
	err = tls.Client(conn, &tls.Config{ServerName: "example.com"}).HandshakeContext(context.Background())
	assert.ErrorIs(t, err, syscall.ETIMEDOUT)
	expectWithin(t, "TLS handshake", time.Since(start), busyBound)
}
