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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
		require.IsType(t, &net.TCPConn{}, client, "the writer is unguarded: a bare *net.TCPConn from Dialer")
		stop := make(chan struct{})
		watched := watchShut(rawConn(t, client), stop)
		started := time.Now()
		sent := sendPattern(client, size, 0)
		end, err := waitErr(t, sent, 3*budget)
		close(stop)
		w := <-watched
		assert.ErrorIs(t, err, syscall.ETIMEDOUT)
		require.False(t, w.first.IsZero(), "the writer's window was never seen shut")
		fromFirst, fromLast := end.Sub(w.first), end.Sub(w.last)
		earliest, latest := zeroWindowLimits(c, w.rto)
		t.Logf("writer facing a zero window: shut %v after the first write (%d shut periods), cut %v after the window first shut, %v after it last shut; limits %v and %v",
			w.first.Sub(started).Round(time.Millisecond), w.periods, fromFirst.Round(time.Millisecond), fromLast.Round(time.Millisecond), earliest, latest)
		assert.GreaterOrEqual(t, fromFirst, earliest, "writer facing a zero window: cut before the user timeout, so something else ended it")
		assert.LessOrEqual(t, fromLast, latest, "writer facing a zero window: cut later than the kernel's zero-window rule allows")
		_, err = io.Copy(io.Discard, server)
		assert.ErrorIs(t, err, syscall.ECONNRESET, "the reader learns it when it reads again")
	})
}

// zeroWindowMargin is what the latest zero-window cut may add to the
// kernel's promise and one RTO: the first probe timer's own slack (an
// eighth of the RTO plus a tick, under 50 ms), and the writer's goroutine
// waking to its ETIMEDOUT on a loaded 2-core machine. It is the margin
// lab.Late allows a busy detection on top of its one RTO. (A late poll of
// the shut only shortens what is measured against it.)
const zeroWindowMargin = lab.Late - lab.RTOMin

// zeroWindowLimits returns when an unguarded writer with c, facing a live
// reader's shut window, may be cut: not before UserTimeout after the window
// first shut, and not later than the kernel's promise plus one RTO after it
// last shut, each with zeroWindowMargin or lab.Early. rto is the RTO
// TCP_INFO showed as it last shut.
//
// Linux's rule (net/ipv4/tcp_timer.c, tcp_output.c, 6.12 and later): once
// nothing is in flight and data waits behind the window,
// tcp_check_probe_timer arms the probe timer tcp_probe0_base ahead
// (max(icsk_rto, TCP_RTO_MIN)); its first firing, tcp_probe_timer, sets
// icsk_probes_tstamp, and every later firing aborts with ETIMEDOUT once
// jiffies - icsk_probes_tstamp >= TCP_USER_TIMEOUT. The probes it sends,
// tcp_send_probe0, back off from tcp_probe0_base, doubling
// (tcp_probe0_when) up to TCP_RTO_MAX or TCP_RTO_MAX_MS, and every timer
// they and the peer's answers (tcp_ack_probe) arm is clamped to the user
// timeout left (tcp_clamp_probe0_to_user_timeout). Answers reset
// icsk_probes_out, never the clock; a window that lets data out again does
// (tcp_ack_probe, tcp_send_probe0, tcp_probe_timer), and the next shut
// starts it afresh. So the cut comes
//
//	shut + tcp_probe0_base (+ its timer slack) + UserTimeout + slack
//
// after the last shut: tuning's figure for a shut unguarded window,
// UserTimeout plus the timer wheel's slack (Snapshot.EndsIn), plus one RTO.
// The clock never starts before the first shut (it is only ever set with
// the window shut), so UserTimeout after the first shut is the earliest a
// cut by this rule can come: a partial reopening may leave the clock
// running (see the guard), never wind it back.
func zeroWindowLimits(c tuning.Config, rto time.Duration) (earliest, latest time.Duration) {
	promise := tuning.Snapshot{State: tuning.TCPEstablished, NotSentBytes: 1, Options: c}.EndsIn()
	return c.UserTimeout - lab.Early, promise + max(tuning.LANRTOMax, rto) + zeroWindowMargin
}

// shutWatch is what watchShut saw of a writer's window.
type shutWatch struct {
	first, last time.Time     // the polls that saw the window shut first, and the last shut begin
	rto         time.Duration // tcpi_rto at the last shut
	periods     int           // shut periods seen
}

// shutPoll is how often watchShut reads TCP_INFO: about a jiffy at HZ=250.
const shutPoll = 5 * time.Millisecond

// watchShut polls the TCP_INFO of the writer's socket rc until the kernel
// closes it or stop is closed, for when the peer's window shut as the
// kernel's probe timer sees it: nothing in flight (tcpi_unacked, the
// kernel's packets_out) and data waiting (tcpi_notsent_bytes). A shut
// begins at a poll that sees it shut after seeing it open, or shut with
// more bytes acknowledged than the poll before (the window let data out in
// between). Each time recorded is taken after the read that showed it, so
// it is no earlier than the shut it stands for; a starved poller only makes
// it later.
func watchShut(rc syscall.RawConn, stop <-chan struct{}) <-chan shutWatch {
	out := make(chan shutWatch, 1)
	go func() {
		var w shutWatch
		defer func() { out <- w }()
		tick := time.NewTicker(shutPoll)
		defer tick.Stop()
		wasShut, acked := false, uint64(0)
		for {
			info, err := lab.TCPInfo(rc)
			if err != nil || info.State == lab.StateClose {
				return
			}
			now := time.Now()
			shut := info.Unacked == 0 && info.Notsent_bytes > 0
			if shut && (!wasShut || info.Bytes_acked != acked) {
				if w.first.IsZero() {
					w.first = now
				}
				w.last, w.rto = now, time.Duration(info.Rto)*time.Microsecond
				w.periods++
			}
			wasShut, acked = shut, info.Bytes_acked
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return out
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
