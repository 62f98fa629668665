package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/integration/testsvc"
	"github.com/ghostsock/ghostsock/internal/testcert"
	"github.com/ghostsock/ghostsock/tuning"
)

// The protocol rows of part 9: requests back to back through the kit's
// adapters (httptransport.New with Listen; grpcdial and grpcserver)
// against the same work stock.

// costService is a server and a client of one protocol; do makes one
// request.
type costService struct {
	do       func() error
	closeAll func()
}

// protoRows are the protocol rows: requests per second, back to back.
func protoRows() []costWork {
	return []costWork{
		{name: "HTTP/1.1 over TLS through httptransport.New", unit: "requests per second", run: requests(httpService(false))},
		{name: "HTTP/2 over TLS through httptransport.New", unit: "requests per second", run: requests(httpService(true))},
		{name: "gRPC unary through grpcdial and grpcserver", unit: "requests per second", run: requests(grpcService)},
	}
}

// requests makes a row's run from a service: as many requests as fit in
// the trial's span, one at a time. Its pair is unused: a service makes its
// own connections.
func requests(setup func(c *tuning.Config) (*costService, error)) func(c *tuning.Config, o costSize) (int, error) {
	return func(c *tuning.Config, o costSize) (int, error) {
		s, err := setup(c)
		if err != nil {
			return 0, err
		}
		defer s.closeAll()
		if err := s.do(); err != nil { // the connection, made before the clocks start
			return 0, err
		}
		o.start()
		n := 0
		for end := time.Now().Add(o.span); time.Now().Before(end); n++ {
			if err := s.do(); err != nil {
				return n, err
			}
		}
		return n, nil
	}
}

// listenFor listens on loopback through the kit, or stock.
func listenFor(c *tuning.Config) (net.Listener, error) {
	if c != nil {
		return c.Listen(context.Background(), "tcp", "127.0.0.1:0")
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// httpService serves 64 B over TLS, HTTP/2 if h2 else HTTP/1.1, to a
// client through httptransport.New(c) or a stock http.Transport.
func httpService(h2 bool) func(c *tuning.Config) (*costService, error) {
	return func(c *tuning.Config) (*costService, error) {
		cert, pool, err := testcert.New()
		if err != nil {
			return nil, err
		}
		ln, err := listenFor(c)
		if err != nil {
			return nil, err
		}
		body := make([]byte, 64)
		srv := &http.Server{
			Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }),
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		}
		if !h2 {
			srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}
		go srv.ServeTLS(ln, "", "")
		// Stock is http.DefaultTransport's settings, which New keeps
		// (its idle timeout arms a timer HTTP/2 resets per request).
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if c != nil {
			tr = httptransport.New(*c)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		url := "https://" + ln.Addr().String() + "/"
		client := &http.Client{Transport: tr}
		return &costService{
			do: func() error {
				resp, err := client.Get(url)
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && (resp.ProtoMajor == 2) != h2 {
					err = fmt.Errorf("spoke %s", resp.Proto)
				}
				return err
			},
			closeAll: func() { tr.CloseIdleConnections(); srv.Close() },
		}, nil
	}
}

// grpcService is grpc_testing's UnaryCall with a 64 B answer, through
// grpcserver and grpcdial with c, or stock.
func grpcService(c *tuning.Config) (*costService, error) {
	var ln net.Listener
	var err error
	var sopts []grpc.ServerOption
	copts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if c != nil {
		ln, err = grpcserver.Listen(context.Background(), "tcp", "127.0.0.1:0", *c)
		sopts, copts = grpcserver.Options(*c), append(copts, grpcdial.Options(*c)...)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer(sopts...)
	testsvc.Register(srv)
	go srv.Serve(ln)
	cc, err := grpc.NewClient(ln.Addr().String(), copts...)
	if err != nil {
		srv.Stop()
		return nil, err
	}
	client := testpb.NewTestServiceClient(cc)
	req := &testpb.SimpleRequest{ResponseSize: 64, Payload: &testpb.Payload{Body: make([]byte, 64)}}
	return &costService{
		do: func() error {
			_, err := client.UnaryCall(context.Background(), req)
			return err
		},
		closeAll: func() { cc.Close(); srv.Stop() },
	}, nil
}
