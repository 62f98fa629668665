//go:build linux

package integration

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// pingCounter is a listener whose connections count the HTTP/2 PING
// frames their clients send (not the acknowledgements of the server's
// own): it parses a copy of what the server reads.
type pingCounter struct {
	net.Listener
	pings atomic.Int64
	wg    sync.WaitGroup
}

func (l *pingCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	l.wg.Go(func() {
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(pr, preface); err != nil || !bytes.Equal(preface, []byte(http2.ClientPreface)) {
			io.Copy(io.Discard, pr)
			return
		}
		fr := http2.NewFramer(nil, pr)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				io.Copy(io.Discard, pr)
				return
			}
			if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
				l.pings.Add(1)
			}
		}
	})
	return &teeConn{Conn: c, w: pw}, nil
}

type teeConn struct {
	net.Conn
	w *io.PipeWriter
}

func (c *teeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.w.Write(b[:n])
	}
	if err != nil {
		c.w.CloseWithError(err)
	}
	return n, err
}

func (c *teeConn) Close() error {
	c.w.Close()
	return c.Conn.Close()
}

// h2cServer serves HTTP/2 without TLS (prior knowledge) on the server host,
// counting the PINGs clients send; /large streams until the client or the
// connection goes away.
func h2cServer(t *testing.T, l *lab.Lab) (*pingCounter, string) {
	t.Helper()
	ln, err := l.Listen((&net.ListenConfig{}).Listen, "tcp", l.ServerAddrPort(0))
	require.NoError(t, err)
	pc := &pingCounter{Listener: ln}
	srv := &http.Server{Handler: endless(nil), Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(pc)
	t.Cleanup(func() { srv.Close(); pc.wg.Wait() })
	return pc, "http://" + ln.Addr().String()
}

// TestH2C: an h2c client on NewH2C's transport works against an h2c
// server, sends no PING frame (the server counts them; the same client
// with x/net's health check on sends several in the same time), and finds
// a vanished server within the bound.
func TestH2C(t *testing.T) {
	t.Parallel()
	c := kit(t)
	_, busyW := windows(c)
	idleFor := 3 * time.Second

	t.Run("control: x/net's health check pings", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		pc, url := h2cServer(t, l)
		tr := httptransport.NewH2C(c)
		tr.ReadIdleTimeout, tr.PingTimeout = 500*time.Millisecond, time.Second // set after: the stock health check
		defer tr.CloseIdleConnections()
		getSmall(t, &http.Client{Transport: tr}, url, 2)
		time.Sleep(idleFor)
		t.Logf("health check on: %d PINGs in %v idle", pc.pings.Load(), idleFor)
		assert.GreaterOrEqual(t, pc.pings.Load(), int64(2), "the counter sees PINGs")
	})

	t.Run("NewH2C: no PING, a vanished server found within the bound", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		pc, url := h2cServer(t, l)
		tr := httptransport.NewH2C(c)
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		getSmall(t, client, url, 2)
		time.Sleep(idleFor)
		getSmall(t, client, url, 2)
		assert.Zero(t, pc.pings.Load(), "PING frames from a hardened h2c client")

		require.NoError(t, l.Vanish(lab.Server))
		start := time.Now()
		errc := make(chan error, 1)
		go func() {
			req, _ := http.NewRequestWithContext(context.Background(), "GET", url+"/small", nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		end, err := waitErr(t, errc, 3*busyW.bound)
		require.Error(t, err)
		assert.Equal(t, tuning.CauseSilentPeer, tuning.Classify(err), "%v", err)
		expectWithin(t, "h2c request to a vanished server", end.Sub(start), busyW)
		assert.Zero(t, pc.pings.Load(), "no PING while it waited either")
	})
}
