package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/ghostsock/ghostsock/internal/census"
)

// watch takes a census every interval and serves the latest as metrics
// in the Prometheus text format on listen, at /metrics, until SIGINT or
// SIGTERM. The metrics go through OpenTelemetry's Prometheus exporter:
// per group (a listening socket, or the remote address of connections this
// namespace dialed), ghostscan_connections{group, process, state} for
// each of established, unwatched, retransmitting, stalled, suspected,
// never_ending (the kernel will never end them) and slow_path, and
// ghostscan_ends_in_longest_seconds{group, process}; for the scan,
// ghostscan_scan_duration_seconds, ghostscan_scan_sockets and
// ghostscan_scan_errors_total (scans that failed; the metrics then keep the
// last census that did not).
func watch(o census.Options, interval time.Duration, listen string, stdout, stderr io.Writer) int {
	fail := func(err error) int { fmt.Fprintln(stderr, "ghostscan:", err); return 2 }
	if interval <= 0 {
		return fail(fmt.Errorf("-watch %v: the interval must be positive", interval))
	}
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return fail(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer provider.Shutdown(context.Background())
	w := &watcher{}
	if err := w.register(provider.Meter("ghostscan")); err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fail(fmt.Errorf("-listen: %w", err))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	w.scan(o, stderr)
	fmt.Fprintf(stdout, "ghostscan: a census every %v, metrics on http://%s/metrics\n", interval, ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(shut)
			return 0
		case err := <-served:
			if errors.Is(err, http.ErrServerClosed) {
				return 0
			}
			return fail(err)
		case <-tick.C:
			w.scan(o, stderr)
		}
	}
}

// watcher holds the latest census for the metrics' callbacks.
type watcher struct {
	mu     sync.Mutex
	last   *census.Census
	errors int64
}

func (w *watcher) scan(o census.Options, stderr io.Writer) {
	c, err := census.Scan(o)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.errors++
		fmt.Fprintln(stderr, "ghostscan: census:", err)
		return
	}
	w.last = c
}

// states are the counts of a Group that ghostscan_connections reports,
// by the value of its state attribute.
var states = []struct {
	name  string
	count func(*census.Group) int
}{
	{"established", func(g *census.Group) int { return g.Established }},
	{"close_wait", func(g *census.Group) int { return g.CloseWait }},
	{"unwatched", func(g *census.Group) int { return g.Unwatched }},
	{"retransmitting", func(g *census.Group) int { return g.Retransmitting }},
	{"stalled", func(g *census.Group) int { return g.Stalled }},
	{"suspected", func(g *census.Group) int { return g.Suspected }},
	{"never_ending", func(g *census.Group) int { return g.NeverEnds }},
	{"slow_path", func(g *census.Group) int { return g.SlowPath }},
}

func (w *watcher) register(m metric.Meter) error {
	conns, err := m.Int64ObservableGauge("ghostscan.connections",
		metric.WithDescription("TCP connections of the namespace by group (a listening socket, or a remote address this namespace dialed) and state, from the latest census"))
	if err != nil {
		return err
	}
	endsIn, err := m.Float64ObservableGauge("ghostscan.ends_in.longest", metric.WithUnit("s"),
		metric.WithDescription("the longest the kernel may still take to end a connection of the group if its peer is gone (never-ending ones are counted in state never_ending)"))
	if err != nil {
		return err
	}
	took, err := m.Float64ObservableGauge("ghostscan.scan.duration", metric.WithUnit("s"),
		metric.WithDescription("how long the latest census took"))
	if err != nil {
		return err
	}
	sockets, err := m.Int64ObservableGauge("ghostscan.scan.sockets",
		metric.WithDescription("TCP sockets of the namespace, every state, at the latest census"))
	if err != nil {
		return err
	}
	failed, err := m.Int64ObservableCounter("ghostscan.scan.errors", metric.WithDescription("censuses that failed"))
	if err != nil {
		return err
	}
	closeWait, err := m.Float64ObservableGauge("ghostscan.close_wait.longest", metric.WithUnit("s"),
		metric.WithDescription("the longest a connection of the group has waited in CLOSE_WAIT since its peer's last segment: its process has not closed what its peer closed"))
	if err != nil {
		return err
	}
	orphans, err := m.Int64ObservableGauge("ghostscan.fin_wait2.orphans",
		metric.WithDescription("sockets of the namespace closed by it and held by no process, waiting for their peer's FIN (FIN_WAIT2), at the latest census"))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		obs.ObserveInt64(failed, w.errors)
		c := w.last
		if c == nil {
			return nil
		}
		obs.ObserveFloat64(took, time.Duration(c.Took).Seconds())
		obs.ObserveInt64(sockets, int64(c.Sockets))
		obs.ObserveInt64(orphans, int64(c.FinWait2Orphans))
		for _, g := range c.Groups {
			group := attribute.String("group", g.Name)
			process := attribute.String("process", g.Process)
			for _, s := range states {
				obs.ObserveInt64(conns, int64(s.count(g)), metric.WithAttributes(group, process, attribute.String("state", s.name)))
			}
			obs.ObserveFloat64(endsIn, time.Duration(g.MaxEndsIn).Seconds(), metric.WithAttributes(group, process))
			obs.ObserveFloat64(closeWait, time.Duration(g.CloseWaitFor).Seconds(), metric.WithAttributes(group, process))
		}
		return nil
	}, conns, endsIn, took, sockets, failed, closeWait, orphans)
	return err
}
