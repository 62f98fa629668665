package ghostmetrics_test

import (
	"log"
	"time"

	"github.com/ghostsock/ghostsock/tuning"
	"github.com/ghostsock/ghostsock/tuning/ghostmetrics"
)

// Count what the kit does with the application's OpenTelemetry setup: New
// takes the global MeterProvider, which the application points at its
// exporter (OTLP, Prometheus) at start-up.
func ExampleNew() {
	obs, err := ghostmetrics.New()
	if err != nil {
		log.Fatal(err)
	}
	c, err := tuning.ForBudget(20 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	c.Observer = obs
	// Use c everywhere: grpcdial.Options(c), grpcserver.Listen(ctx, "tcp",
	// ":50051", c), httptransport.New(c), c.Listen, c.DialFunc(nil).
}
