//go:build linux

package integration

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// The writer that bursts and then trickles, on every entry point that
// writes: a 1 MiB burst grows the congestion window and the send buffer,
// then small writes a few milliseconds apart would each re-arm the
// kernel's tail-loss probe over its RTO (see TestStreamingWriter, which
// proves the raw Conn). Here the writer is a gRPC stream or an HTTP body,
// server to client and client to server, and its peer vanishes while it
// trickles. The kit's Observer on the writer's side must see the kernel's
// reap (ETIMEDOUT, CauseReapedBusy) within the connection's bound:
// GuardBound for a guarded connection, Bounds' busy figure for the
// unguarded ones HTTP/2 and gRPC use.
const (
	burstSize   = 1 << 20
	trickleSize = 1 << 10
	burstChunk  = 32 << 10
)

// burstThenTrickle writes burstSize bytes in burstChunk pieces and then
// trickle bytes every period through write, until write fails or stop is
// closed.
func burstThenTrickle(write func([]byte) error, period time.Duration, stop <-chan struct{}) error {
	buf := make([]byte, burstChunk)
	for sent := 0; sent < burstSize; sent += len(buf) {
		if err := write(buf); err != nil {
			return err
		}
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		if err := write(buf[:trickleSize]); err != nil {
			return err
		}
	}
}

// burstReader is burstThenTrickle as a request body: Read gives the burst
// at once, then trickleSize bytes each period, until stop is closed (EOF).
type burstReader struct {
	left   int
	period time.Duration
	stop   <-chan struct{}
}

func (r *burstReader) Read(b []byte) (int, error) {
	if r.left > 0 {
		n := min(len(b), r.left)
		r.left -= n
		clear(b[:n])
		return n, nil
	}
	select {
	case <-r.stop:
		return 0, io.EOF
	case <-time.After(r.period):
	}
	n := min(len(b), trickleSize)
	clear(b[:n])
	return n, nil
}

// reapWatch is the writer side's Observer: it delivers the first end it is
// told of.
func reapWatch(c tuning.Config) (tuning.Config, <-chan tuning.Event) {
	ends := make(chan tuning.Event, 1)
	c.Observer = tuning.NewObserver(func(e tuning.Event) {
		if e.Kind == tuning.EventEnded {
			select {
			case ends <- e:
			default:
			}
		}
	})
	return c, ends
}

// countingReader counts what it reads and closes got once burstSize bytes
// have passed: the burst has arrived, the writer now trickles.
type countingReader struct {
	r    io.Reader
	n    int
	got  chan struct{}
	done bool
}

func newCountingReader(r io.Reader) *countingReader {
	return &countingReader{r: r, got: make(chan struct{})}
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.add(n)
	return n, err
}

func (c *countingReader) add(n int) {
	c.n += n
	if !c.done && c.n >= burstSize {
		c.done = true
		close(c.got)
	}
}

func TestWritersAfterBurst(t *testing.T) {
	t.Parallel()
	base := kit(t)
	_, busy := windows(base)
	guardBound := window{busy.earliest, base.GuardBound()}
	const period = 5 * time.Millisecond

	// vanished waits for the writer's end and checks it against the bound
	// of the connection the Observer names.
	vanished := func(t *testing.T, l *lab.Lab, who lab.Host, got <-chan struct{}, ends <-chan tuning.Event) {
		t.Helper()
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the burst did not arrive within 10s")
		}
		time.Sleep(200 * time.Millisecond) // trickling, the burst's window grown
		require.NoError(t, l.Vanish(who))
		start := time.Now()
		var e tuning.Event
		select {
		case e = <-ends:
		case <-time.After(3 * guardBound.bound):
			t.Fatalf("the writer's connection did not end within %v", 3*guardBound.bound)
		}
		end := time.Since(start)
		w := busy
		if e.Guarded {
			w = guardBound
		}
		assert.ErrorIs(t, e.Err, syscall.ETIMEDOUT, "the kernel's verdict")
		assert.Equal(t, tuning.CauseReapedBusy, e.Cause, "%v", e.Err)
		expectWithin(t, t.Name(), end, w)
	}

	t.Run("gRPC server stream, client vanishes", func(t *testing.T) {
		l := newLab(t)
		c, ends := reapWatch(base)
		ln := kitGRPCServer(t, l, c)
		client := grpcClient(t, ln.Addr().String())
		var params []*testpb.ResponseParameters
		for range burstSize / burstChunk {
			params = append(params, &testpb.ResponseParameters{Size: burstChunk})
		}
		for range int(20 * time.Second / period) {
			params = append(params, &testpb.ResponseParameters{Size: trickleSize, IntervalUs: int32(period / time.Microsecond)})
		}
		stream, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{ResponseParameters: params})
		require.NoError(t, err)
		r := newCountingReader(nil)
		go func() {
			for {
				m, err := stream.Recv()
				if err != nil {
					return
				}
				r.add(len(m.GetPayload().GetBody()))
			}
		}()
		vanished(t, l, lab.Client, r.got, ends)
	})

	t.Run("gRPC client stream, server vanishes", func(t *testing.T) {
		l := newLab(t)
		ln, _ := grpcServer(t, l, (&net.ListenConfig{}).Listen)
		c, ends := reapWatch(base)
		client := grpcClient(t, ln.Addr().String(), grpcdial.Options(c)...)
		stream, err := client.StreamingInputCall(t.Context())
		require.NoError(t, err)
		got := make(chan struct{})
		stop := make(chan struct{})
		defer close(stop)
		sent := 0
		go burstThenTrickle(func(b []byte) error {
			// Send returns once the message is queued for the
			// transport; the flow-control window lets the burst out.
			err := stream.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: b}})
			if sent += len(b); sent == burstSize {
				close(got)
			}
			return err
		}, period, stop)
		vanished(t, l, lab.Server, got, ends)
	})

	for _, proto := range []struct {
		name  string
		tls   bool
		major int
	}{{"HTTP/1.1", false, 1}, {"HTTP/2 TLS", true, 2}} {
		t.Run(proto.name+" response, client vanishes", func(t *testing.T) {
			l := newLab(t)
			c, ends := reapWatch(base)
			stop := make(chan struct{})
			defer close(stop)
			srv, url := httpServer(t, l, func(ctx context.Context, network, addr string) (net.Listener, error) {
				ln, err := (&net.ListenConfig{}).Listen(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return c.WrapListener(ln), nil
			}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rc := http.NewResponseController(w)
				burstThenTrickle(func(b []byte) error {
					if _, err := w.Write(b); err != nil {
						return err
					}
					return rc.Flush()
				}, period, stop)
			}), proto.tls, nil)
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			resp, err := clientFor(srv, tr, proto.tls).Get(url)
			require.NoError(t, err)
			require.Equal(t, proto.major, resp.ProtoMajor)
			r := newCountingReader(resp.Body)
			go func() { io.Copy(io.Discard, r); resp.Body.Close() }()
			vanished(t, l, lab.Client, r.got, ends)
		})

		t.Run(proto.name+" request body, server vanishes", func(t *testing.T) {
			l := newLab(t)
			body := newCountingReader(nil)
			srv, url := httpServer(t, l, (&net.ListenConfig{}).Listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body.r = r.Body
				io.Copy(io.Discard, body)
			}), proto.tls, nil)
			c, ends := reapWatch(base)
			tr := httptransport.New(c)
			defer tr.CloseIdleConnections()
			client := clientFor(srv, tr, proto.tls)
			stop := make(chan struct{})
			defer close(stop)
			req, err := http.NewRequestWithContext(t.Context(), "POST", url, &burstReader{left: burstSize, period: period, stop: stop})
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() {
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.ProtoMajor != proto.major {
						err = errors.New(resp.Proto + " answered")
					}
				}
				done <- err
			}()
			vanished(t, l, lab.Server, body.got, ends)
			select {
			case err := <-done:
				assert.Error(t, err, "the request failed")
			case <-time.After(5 * time.Second):
				t.Error("the request had not failed 5s after its connection ended")
			}
		})
	}
}
