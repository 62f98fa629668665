//go:build linux

package integration

import (
	"context"
	"crypto/sha256"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/integration/testsvc"
	"github.com/ghostsock/ghostsock/tuning"
)

// sendPattern writes n bytes of the pattern to c over about d (a veth pair
// would carry 100 MB in a fraction of a second, too fast for an outage to
// land in the middle) and closes its write side, returning the writer's
// error.
func sendPattern(c net.Conn, n int64, d time.Duration) <-chan error {
	errc := make(chan error, 1)
	go func() {
		const chunk = 256 << 10
		src, buf := testsvc.Pattern(), make([]byte, chunk)
		start := time.Now()
		var err error
		for sent := int64(0); sent < n && err == nil; sent += chunk {
			if d > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(float64(d) * float64(sent) / float64(n)))))
			}
			m := min(chunk, n-sent)
			src.Read(buf[:m])
			_, err = c.Write(buf[:m])
		}
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	return errc
}

// checkPattern reads c to EOF and checks that it carried exactly n bytes
// of the pattern.
func checkPattern(t *testing.T, c net.Conn, n int64) {
	t.Helper()
	got := sha256.New()
	read, err := io.Copy(got, c)
	require.NoError(t, err, "reader failed after %d bytes", read)
	assert.Equal(t, n, read, "bytes received")
	assert.Equal(t, patternSum(n), got.Sum(nil), "checksum of the received stream")
}

// patternSum is the SHA-256 of the pattern's first n bytes.
func patternSum(n int64) []byte {
	h := sha256.New()
	io.Copy(h, io.LimitReader(testsvc.Pattern(), n))
	return h.Sum(nil)
}

// outageBudget is the budget of the outage tests, and outage the outage
// they survive: just under what Config.OutageSurvived promises, the last
// retransmission ahead of the deadline on the worst RTO of a LAN (2.0 s
// for this budget, whose user timeout is 4 s). See tuning/doc.go.
const outageBudget = 5 * time.Second

func outage(c tuning.Config) time.Duration { return c.OutageSurvived() - 200*time.Millisecond }

func outageKit(t *testing.T) tuning.Config {
	c, err := tuning.ForBudget(outageBudget)
	require.NoError(t, err)
	return c
}

// patternStream starts a server stream of msgs messages of size bytes cut
// from testsvc.Pattern, one every interval.
func patternStream(t *testing.T, client testpb.TestServiceClient, msgs, size int, interval time.Duration) testpb.TestService_StreamingOutputCallClient {
	t.Helper()
	params := make([]*testpb.ResponseParameters, msgs)
	for i := range params {
		params[i] = &testpb.ResponseParameters{Size: int32(size), IntervalUs: int32(interval / time.Microsecond)}
	}
	stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{ResponseParameters: params})
	require.NoError(t, err)
	return stream
}

// checkStream receives a patternStream to its end, calling pause after
// the first message, and checks that every message arrived, in order.
func checkStream(t *testing.T, stream testpb.TestService_StreamingOutputCallClient, msgs, size int, pause func()) {
	t.Helper()
	got := sha256.New()
	n := 0
	for ; ; n++ {
		if n == 1 && pause != nil {
			pause()
		}
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "stream failed after %d messages", n)
		got.Write(m.GetPayload().GetBody())
	}
	assert.Equal(t, msgs, n, "messages received")
	assert.Equal(t, patternSum(int64(msgs*size)), got.Sum(nil), "checksum of the stream")
}

func TestSurvivesShortOutageWhileBusy(t *testing.T) {
	c := outageKit(t)
	const size = 100 << 20
	for _, host := range []lab.Host{lab.Server, lab.Client} {
		t.Run(host.String()+" unreachable for just under OutageSurvived", func(t *testing.T) {
			l := newLab(t)
			client, server := tcpPair(t, l, c.Listen, c.Dialer().Dial)
			sent := sendPattern(client, size, 2*outageBudget)
			go func() {
				time.Sleep(outageBudget / 2) // mid-transfer
				if err := l.Vanish(host); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(outage(c))
				if err := l.Restore(host); err != nil {
					t.Error(err)
				}
			}()
			checkPattern(t, server, size)
			require.NoError(t, <-sent, "writer")
		})
	}
}

func TestSurvivesShortOutageGRPCStream(t *testing.T) {
	c := outageKit(t)
	const msgs, size = 3200, 32 << 10 // 100 MiB over about two budgets
	l := newLab(t)
	ln, watch := grpcServer(t, l, func(ctx context.Context, network, addr string) (net.Listener, error) {
		return grpcserver.Listen(ctx, network, addr, c)
	}, grpcserver.Options(c)...)
	client := grpcClient(t, ln.Addr().String(), grpcdial.Options(c)...)
	stream := patternStream(t, client, msgs, size, 2*outageBudget/msgs)
	go func() {
		time.Sleep(outageBudget / 2)
		if err := l.Vanish(lab.Server); err != nil {
			t.Error(err)
			return
		}
		time.Sleep(outage(c))
		if err := l.Restore(lab.Server); err != nil {
			t.Error(err)
		}
	}()
	checkStream(t, stream, msgs, size, nil)
	assert.Equal(t, 1, watch.Open(), "the server still holds the one connection")
}

// TestZeroWindow covers a live reader that stops reading. TCP_USER_TIMEOUT
// counts time spent in zero window too (tcp_probe_timer): the writer's
// kernel ends the connection once the window has stayed shut for the user
// timeout, even though the reader's kernel answers every probe. A pause
// shorter than the budget is survived; a longer one is not, with raw TCP
// or HTTP/1.1. gRPC and HTTP/2 never shut the TCP window for a slow
// consumer: their transport keeps reading the socket and applies flow
// control per stream (see TestSurvivesSlowGRPCConsumer).
func TestZeroWindow(t *testing.T) {
	c := kit(t)
	const size = 64 << 20
	t.Run("reader pauses for half the budget: survives", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		client, server := tcpPair(t, l, c.Listen, c.Dialer().Dial)
		sent := sendPattern(client, size, 0)
		time.Sleep(budget / 2)
		checkPattern(t, server, size)
		require.NoError(t, <-sent, "writer")
	})
	t.Run("reader pauses for three budgets: the user timeout ends it", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		client, server := tcpPair(t, l, c.Listen, c.Dialer().Dial)
		paused := time.Now()
		sent := sendPattern(client, size, 0)
		end, err := waitErr(t, sent, 3*budget)
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		_, busy := windows(c)
		expectWithin(t, "writer facing a zero window", end.Sub(paused), busy)
		_, err = io.Copy(io.Discard, server)
		assert.ErrorIs(t, err, syscall.ECONNRESET, "the reader learns it when it reads again")
	})
}

func TestSurvivesSlowGRPCConsumer(t *testing.T) {
	t.Parallel()
	c := kit(t)
	const msgs, size = 1024, 32 << 10
	l := newLab(t)
	ln, watch := grpcServer(t, l, func(ctx context.Context, network, addr string) (net.Listener, error) {
		return grpcserver.Listen(ctx, network, addr, c)
	}, grpcserver.Options(c)...)
	client := grpcClient(t, ln.Addr().String(), grpcdial.Options(c)...)
	stream := patternStream(t, client, msgs, size, 0)
	// The consumer stops for three budgets; HTTP/2 flow control holds the
	// sender, and the TCP window stays open.
	checkStream(t, stream, msgs, size, func() { time.Sleep(3 * budget) })
	assert.Equal(t, 1, watch.Begun(), "no reconnection")
}

func TestSurvivesLongIdle(t *testing.T) {
	t.Parallel()
	c := kit(t)
	idle := 10 * budget
	l := newLab(t)

	// Raw TCP: both ends hardened, silent for ten budgets while keepalive
	// probes go back and forth, then data both ways on the same conns.
	client, server := tcpPair(t, l, c.Listen, c.Dialer().Dial)

	// gRPC: one channel, idle as long, then an RPC on the same connection.
	ln, watch := grpcServer(t, l, func(ctx context.Context, network, addr string) (net.Listener, error) {
		return grpcserver.Listen(ctx, network, addr, c)
	}, grpcserver.Options(c)...)
	rpc := grpcClient(t, ln.Addr().String(), grpcdial.Options(c)...)
	require.NoError(t, unary(t.Context(), rpc))

	time.Sleep(idle)
	info, err := lab.TCPInfo(rawConn(t, client))
	require.NoError(t, err)
	t.Logf("after %v idle: %s", idle, lab.StateName(info.State))
	for _, p := range [][2]net.Conn{{client, server}, {server, client}} {
		_, err := p[0].Write([]byte("still here"))
		require.NoError(t, err)
		buf := make([]byte, 10)
		_, err = io.ReadFull(p[1], buf)
		require.NoError(t, err)
		assert.Equal(t, "still here", string(buf))
	}
	require.NoError(t, unary(t.Context(), rpc))
	assert.Equal(t, 1, watch.Open(), "the RPC used the connection that idled")
	assert.Equal(t, 1, watch.Begun(), "no reconnection")
}
