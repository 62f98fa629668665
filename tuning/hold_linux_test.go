package tuning

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHoldLivePeer streams to a live loopback peer, a burst and then small
// writes, as the streaming-writer lab cells do: a peer that acknowledges
// never makes a write wait, and ReadFrom's chunks carry every byte.
func TestHoldLivePeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	dial := func(network, addr string) (net.Conn, error) {
		return budget5.DialFunc(nil)(context.Background(), network, addr)
	}
	client, server := pair(t, ln, dial)
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
