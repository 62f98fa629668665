package grpcdial_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/integration/testsvc"
	"github.com/ghostsock/ghostsock/internal/latency"
	"github.com/ghostsock/ghostsock/tuning"
)

// The busy path through grpcdial.Options against a plain grpc.NewClient,
// over loopback, to the same server. Compare with
//
//	go test ./grpcdial -run '^$' -bench . -count 10 | benchstat -col /client -

func benchClients(b *testing.B) (addr string, variants []struct {
	name string
	opts []grpc.DialOption
}) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	testsvc.Register(srv)
	go srv.Serve(ln)
	b.Cleanup(srv.Stop)
	c, err := tuning.ForBudget(20 * time.Second)
	if err != nil {
		b.Fatal(err)
	}
	return ln.Addr().String(), []struct {
		name string
		opts []grpc.DialOption
	}{
		{"client=grpc", nil},
		{"client=ghostsock", grpcdial.Options(c)},
	}
}

func dial(b *testing.B, addr string, opts []grpc.DialOption) testpb.TestServiceClient {
	cc, err := grpc.NewClient("passthrough:///"+addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	client := testpb.NewTestServiceClient(cc)
	if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil {
		b.Fatal(err)
	}
	return client
}

func BenchmarkUnary(b *testing.B) {
	addr, variants := benchClients(b)
	req := &testpb.SimpleRequest{ResponseSize: 1024, Payload: &testpb.Payload{Body: make([]byte, 1024)}}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			client := dial(b, addr, v.opts)
			ctx := context.Background()
			var rec latency.Recorder
			for b.Loop() {
				if err := rec.Time(func() error { _, err := client.UnaryCall(ctx, req); return err }); err != nil {
					b.Fatal(err)
				}
			}
			rec.Report(b)
		})
	}
}

// BenchmarkStream receives 32 KiB messages from an endless server stream:
// one message per op.
func BenchmarkStream(b *testing.B) {
	addr, variants := benchClients(b)
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			client := dial(b, addr, v.opts)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stream, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(32 << 10)
			for b.Loop() {
				if _, err := stream.Recv(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
