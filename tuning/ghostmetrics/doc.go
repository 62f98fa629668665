// Package ghostmetrics counts what package tuning does to connections, as
// OpenTelemetry metrics: how many it hardened, how many are open, how
// each ended (reaped idle or busy, a live reader cut for a stalled window,
// reset, closed, other), and how long the peer had been silent when the
// kernel ended it.
//
// It is an Observer for tuning.Config: set the Observer New returns in the
// Config your listeners and dialers use. Counting is off until you do;
// with Config.Observer nil the kit wraps nothing and records nothing.
//
//	obs, err := ghostmetrics.New() // the global MeterProvider
//	if err != nil { ... }
//	c, _ := tuning.ForBudget(20 * time.Second)
//	c.Observer = obs
//	ln, _ := grpcserver.Listen(ctx, "tcp", ":50051", c)
//
// The package uses only OpenTelemetry's metrics API and sets up no
// exporter: the application picks one (OTLP, or the Prometheus exporter,
// go.opentelemetry.io/otel/exporters/prometheus, for a /metrics page).
// Without WithMeterProvider it takes the global provider
// (otel.GetMeterProvider), whose instruments do nothing until the
// application installs an SDK.
//
// # Metrics
//
//	name                             instrument      unit          attributes
//	ghostsock.connection.hardened    Counter         {connection}  side, network.*
//	ghostsock.connection.count       UpDownCounter   {connection}  side, network.*
//	ghostsock.connection.ended       Counter         {connection}  side, network.*, ghostsock.connection.end_cause
//	ghostsock.connection.silence     Histogram       s             side, network.*, ghostsock.connection.end_cause
//
// ghostsock.connection.side is "dialed" or "accepted"; network.transport
// is "tcp" and network.type "ipv4" or "ipv6", as OpenTelemetry's semantic
// conventions name them. The end cause is tuning.Cause's name:
// reaped_idle, reaped_busy, window_stall, reset, closed or other. The
// silence histogram records, for every end by an error, the time from the
// peer's last ACK to that error, as the kernel counted it: for a reap, how
// long the peer had been gone; compare it with the Config's Bounds.
//
// Names follow the conventions' pattern for connection metrics
// (db.client.connection.count, http.client.connection.duration): no
// convention covers TCP connections themselves, so they live under the
// ghostsock namespace. Attributes are a fixed, small set: no addresses,
// so cardinality stays bounded on a server with a million peers.
//
// # Cost
//
// Every attribute set is built once, in New; recording is a few atomic
// additions in the SDK. An end by an error costs the kit one TCP_INFO
// read, a Close one more getsockopt. BENCHMARKS.md gives the cost per
// dial, accept and end, measured (go test ./tuning/ghostmetrics -bench .).
package ghostmetrics
