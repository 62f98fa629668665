package tuning

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ghostsock/ghostsock/internal/sockopt"
	"github.com/ghostsock/ghostsock/tuning/internal/timers"
)

// TestHoldLivePeer streams to a live loopback peer, a burst and then small
// writes, as the streaming-writer lab cells do: a peer that acknowledges
// never makes a write wait, and ReadFrom's chunks carry every byte.
func TestHoldLivePeer(t *testing.T) {
	ln := loopback(t)
	client, server := pair(t, ln, dialWith(budget5))
	got := make(chan int64, 1)
	go func() { n, _ := io.Copy(io.Discard, server); got <- n }()
	conn := client.(*Conn)
	buf := make([]byte, 64<<10)
	var sent int64
	for range 16 {
		n, err := conn.Write(buf)
		require.NoError(t, err)
		sent += int64(n)
	}
	for range 200 {
		n, err := conn.Write(buf[:1024])
		require.NoError(t, err)
		sent += int64(n)
		time.Sleep(time.Millisecond)
	}
	lr := &io.LimitedReader{R: zeros{}, N: 300 << 10} // not a multiple of the chunk
	n, err := conn.ReadFrom(lr)
	require.NoError(t, err)
	assert.Equal(t, int64(300<<10), n)
	assert.Zero(t, lr.N, "ReadFrom consumes the caller's LimitedReader")
	sent += n
	n, err = conn.ReadFrom(&io.LimitedReader{R: zeros{}, N: -5})
	assert.Zero(t, n, "a LimitedReader with N <= 0 gives nothing, as for io.CopyN")
	assert.NoError(t, err)
	require.NoError(t, conn.CloseWrite())
	assert.Equal(t, sent, <-got, "every byte arrives")
	assert.Zero(t, conn.HeldWrites(), "a live peer acknowledges within an RTO: no write waits")
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// TestHoldAfterPause writes to a live peer that delays its ACKs, after a
// pause longer than the RTO: the peer's last ACK is then as old as the
// pause, and a second write before the first one's ACK (delayed by the
// peer, about 40 ms) finds data in flight and nothing heard for an RTO.
// The flight itself is younger than an RTO: no write waits.
func TestHoldAfterPause(t *testing.T) {
	ln := loopback(t)
	client, server := pair(t, ln, dialWith(budget5))
	conn := client.(*Conn)
	src, err := server.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	delayAcks := func() error { // on the reader's goroutine: no FailNow there
		var serr error
		if err := src.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 0)
		}); err != nil {
			return err
		}
		return serr
	}
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, 16)
		for {
			if err := delayAcks(); err != nil {
				read <- err
				return
			}
			if _, err := server.Read(buf); err != nil {
				read <- err
				return
			}
		}
	}()
	rto := 200 * time.Millisecond // Linux's floor
	waited := 0
	for trial := range 3 {
		time.Sleep(2*rto + 50*time.Millisecond) // a pause longer than the RTO
		_, err := conn.Write([]byte{byte(trial)})
		require.NoError(t, err)
		time.Sleep(2 * timers.HoldCheck) // the next write samples TCP_INFO
		s, err := sockopt.Sample(conn.s.rc)
		require.NoError(t, err)
		if s.Unacked == 0 {
			continue // the ACK came early; this trial shows nothing
		}
		waited++
		require.GreaterOrEqual(t, s.SinceACK, s.RTO, "the premise: nothing heard for an RTO")
		_, err = conn.Write([]byte{byte(trial)})
		require.NoError(t, err)
	}
	require.NotZero(t, waited, "no trial caught the first write's ACK delayed: the test shows nothing")
	assert.Zero(t, conn.HeldWrites(), "a flight younger than an RTO never waits")
	require.NoError(t, conn.Close())
	<-read
}
