package grpcserver_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/tuning"
)

func ExampleOptions() {
	c, err := tuning.ForBudget(30 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := grpcserver.Listen(context.Background(), "tcp", "127.0.0.1:0", c)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(grpcserver.Options(c)...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	defer srv.Stop()
	idle, busy := c.Bounds()
	fmt.Println("vanished clients reaped within", idle, "idle,", busy, "busy")
	// Output: vanished clients reaped within 29.29s idle, 28.1415s busy
}

func ExampleWrapListener() {
	c, _ := tuning.ForBudget(30 * time.Second)
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(grpcserver.Options(c)...)
	go srv.Serve(grpcserver.WrapListener(ln, c))
	defer srv.Stop()
}

func ExampleListen() {
	c, _ := tuning.ForBudget(30 * time.Second)
	ln, err := grpcserver.Listen(context.Background(), "tcp", "127.0.0.1:0", c)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	fmt.Println(ln.Addr().Network())
	// Output: tcp
}
