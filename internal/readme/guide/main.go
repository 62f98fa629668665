// Command guide holds the README's snippets after the first screen,
// compiled. internal/readme's test checks that the README shows them as
// they are here.
package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/tuning"
)

func keepaliveOfYourOwn(ctx context.Context, c tuning.Config,
	creds credentials.TransportCredentials) error {
	ln, err := grpcserver.Listen(ctx, "tcp", ":50051", c)
	if err != nil {
		return err
	}
	s := grpcserver.Settings{Keepalive: keepalive.ServerParameters{
		MaxConnectionAge:      30 * time.Minute,
		MaxConnectionAgeGrace: time.Minute,
	}}
	srv := grpc.NewServer(append(s.Options(c), grpc.Creds(creds))...)
	return srv.Serve(ln)
}

func dialerOfYourOwn(c tuning.Config, meshDial func(context.Context, string) (net.Conn, error),
	creds credentials.TransportCredentials) (*grpc.ClientConn, error) {
	s := grpcdial.Settings{Dial: meshDial} // wrapped: c's options set on what it returns
	return grpc.NewClient("dns:///api.example.com:443",
		append(s.Options(c), grpc.WithTransportCredentials(creds))...)
}

func transportOfYourOwn(c tuning.Config) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	httptransport.Harden(t, c) // keeps your settings and your DialContext, if any
	return &http.Client{Transport: t}
}

func wrappersInOrder(ctx context.Context, c tuning.Config, cfg *tls.Config,
	handler http.Handler) error {
	ln, err := c.Listen(ctx, "tcp", ":8443")
	if err != nil {
		return err
	}
	ln = netutil.LimitListener(ln, 1000) // your wrappers go on top of the kit's listener
	return http.Serve(tls.NewListener(ln, cfg), handler)
}

func stalls(ctx context.Context, c tuning.Config, addr string) (net.Conn, error) {
	// Cut a reader that acknowledges nothing for 2 min; c.StallBound() says when.
	c.StallTimeout = 2 * time.Minute
	return c.DialFunc(nil)(ctx, "tcp", addr) // raw TCP client: dialed, hardened, guarded
}

func main() {
	_, _, _, _, _ = keepaliveOfYourOwn, dialerOfYourOwn, transportOfYourOwn, wrappersInOrder, stalls
}
