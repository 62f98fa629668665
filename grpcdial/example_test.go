package grpcdial_test

import (
	"log"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ghostsock/ghostsock/grpcdial"
	"github.com/ghostsock/ghostsock/tuning"
)

func ExampleOptions() {
	c, err := tuning.ForBudget(20 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	opts := append(grpcdial.Options(c), grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient("dns:///127.0.0.1:50051", opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	// Use cc as any other channel: a vanished server now fails RPCs with
	// codes.Unavailable within 20 s, idle or mid-stream.
}

// A channel that never uses a proxy, whatever HTTPS_PROXY says: the
// equivalent of grpc.WithNoProxy, which grpc-go ignores once a dialer is
// set.
func ExampleSettings() {
	c, err := tuning.ForBudget(20 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	opts := append(grpcdial.Settings{NoProxy: true}.Options(c), grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient("dns:///api.internal:50051", opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
}
