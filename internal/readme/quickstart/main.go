// Command quickstart is the README's first screen, compiled: the four
// snippets a service starts from. internal/readme's test checks that the
// README shows this code as it is here.
package main

import (
	"context"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/tuning"
)

// budget is the one setting: a peer that vanishes, idle or busy, is found
// within 20 s.
func budget() tuning.Config {
	c, err := tuning.ForBudget(20 * time.Second)
	if err != nil {
		panic(err) // only a budget outside tuning.MinBudget (3 s) to MaxBudget (36 h) is refused
	}
	return c
}

// gRPC server: vanished clients are reaped by the kernel, server pings off.
func grpcServer(ctx context.Context, c tuning.Config,
	creds credentials.TransportCredentials) error {
	ln, err := grpcserver.Listen(ctx, "tcp", ":50051", c)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(append(grpcserver.Options(c), grpc.Creds(creds))...)
	// Register your services on srv here.
	return srv.Serve(ln)
}

// gRPC client: a vanished server fails RPCs within the budget, pings off.
func grpcClient(c tuning.Config, creds credentials.TransportCredentials) (*grpc.ClientConn, error) {
	return grpc.NewClient("dns:///api.example.com:443",
		append(grpcdial.Options(c), grpc.WithTransportCredentials(creds))...)
}

// HTTP server: every accepted connection hardened and guarded.
func httpServer(ctx context.Context, c tuning.Config, handler http.Handler) error {
	ln, err := c.Listen(ctx, "tcp", ":8080")
	if err != nil {
		return err
	}
	return http.Serve(ln, handler)
}

// HTTP client: http.DefaultTransport's settings, hardened, HTTP/2 PING off.
func httpClient(c tuning.Config) *http.Client {
	return &http.Client{Transport: httptransport.New(c)}
}

func main() {
	c := budget()
	_ = grpcServer
	_ = grpcClient
	_ = httpServer
	_ = httpClient(c)
}
