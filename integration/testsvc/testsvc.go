// Package testsvc is the gRPC service the integration tests, the demo and
// the benchmarks run: grpc-go's own interop TestService (no code
// generation needed), with a server stream that never ends, and a stats
// handler that tells when the server's connections end.
package testsvc

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/stats"
)

// Service implements UnaryCall, StreamingOutputCall and StreamingInputCall.
type Service struct {
	testpb.UnimplementedTestServiceServer
}

// Register adds a Service to srv.
func Register(srv *grpc.Server) { testpb.RegisterTestServiceServer(srv, &Service{}) }

// UnaryCall answers with a payload of the requested size.
func (*Service) UnaryCall(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, in.GetResponseSize())}}, nil
}

// Pattern returns a reproducible stream of bytes: the bodies of
// StreamingOutputCall's messages, in order, so that a client can checksum
// what it received against what was sent.
func Pattern() io.Reader { return rand.NewChaCha8([32]byte{'g', 'h', 'o', 's', 't'}) }

// StreamingOutputCall sends one message per ResponseParameters entry, with
// bodies cut from Pattern, or, with none, 32 KiB messages until the client
// or the connection goes away.
func (*Service) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	params := in.GetResponseParameters()
	if len(params) == 0 {
		msg := &testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, 32<<10)}}
		for {
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
	}
	pattern := Pattern()
	start := time.Now()
	var due time.Duration
	for _, p := range params {
		// Intervals add up from the start, so sleeping's overshoot does
		// not accumulate.
		due += time.Duration(p.GetIntervalUs()) * time.Microsecond
		time.Sleep(time.Until(start.Add(due)))
		body := make([]byte, p.GetSize())
		pattern.Read(body)
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
	return nil
}

// StreamingInputCall reads the client's messages until the client ends
// its side, and answers with the bytes of payload it received.
func (*Service) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	var got int32
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: got})
		}
		if err != nil {
			return err
		}
		got += int32(len(m.GetPayload().GetBody()))
	}
}

// Endless starts StreamingOutputCall's endless stream, reads 1 MiB of it
// (so the stream is busy), and returns a channel for the error that ends
// it, which a reader goroutine delivers.
func Endless(ctx context.Context, client testpb.TestServiceClient) (<-chan error, error) {
	stream, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
	if err != nil {
		return nil, err
	}
	for got := 0; got < 1<<20; {
		m, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		got += len(m.GetPayload().GetBody())
	}
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				errc <- err
				return
			}
		}
	}()
	return errc, nil
}

// ConnWatcher is a stats.Handler that counts open connections and records
// when each one ends.
type ConnWatcher struct {
	mu    sync.Mutex
	begun int
	open  int
	ended time.Time // when the last connection ended
	cond  *sync.Cond
}

// NewConnWatcher returns a ConnWatcher.
func NewConnWatcher() *ConnWatcher {
	w := &ConnWatcher{}
	w.cond = sync.NewCond(&w.mu)
	return w
}

func (w *ConnWatcher) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (w *ConnWatcher) HandleRPC(context.Context, stats.RPCStats)                       {}
func (w *ConnWatcher) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

// HandleConn counts ConnBegin and ConnEnd.
func (w *ConnWatcher) HandleConn(_ context.Context, s stats.ConnStats) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch s.(type) {
	case *stats.ConnBegin:
		w.begun++
		w.open++
	case *stats.ConnEnd:
		w.open--
		w.ended = time.Now()
	}
	w.cond.Broadcast()
}

// Open is the number of connections open now.
func (w *ConnWatcher) Open() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.open
}

// LastEnd is when the last connection ended, or the zero time.
func (w *ConnWatcher) LastEnd() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ended
}

// Begun is the number of connections accepted so far.
func (w *ConnWatcher) Begun() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.begun
}

// WaitOpen waits until at most n connections are open or the deadline
// passes, and returns the time the last connection ended and how many are
// still open.
func (w *ConnWatcher) WaitOpen(n int, deadline time.Time) (lastEnd time.Time, open int) {
	stop := time.AfterFunc(time.Until(deadline), func() { w.mu.Lock(); w.cond.Broadcast(); w.mu.Unlock() })
	defer stop.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.open > n && time.Now().Before(deadline) {
		w.cond.Wait()
	}
	return w.ended, w.open
}

// Answer writes size bytes to w for every size bytes it reads from r, until
// either ends: the server of a raw-TCP request and answer.
func Answer(r io.Reader, w io.Writer, size int) {
	b := make([]byte, size)
	for {
		if _, err := io.ReadFull(r, b); err != nil {
			return
		}
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}
