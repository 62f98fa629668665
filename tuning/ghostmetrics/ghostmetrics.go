package ghostmetrics

import (
	"context"
	"fmt"
	"net"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/ghostsock/ghostsock/tuning"
)

// ScopeName is the name of the meter the instruments belong to: this
// package's import path.
const ScopeName = "github.com/ghostsock/ghostsock/tuning/ghostmetrics"

// Attribute keys this package adds to OpenTelemetry's.
const (
	SideKey     = attribute.Key("ghostsock.connection.side")
	EndCauseKey = attribute.Key("ghostsock.connection.end_cause")
)

// Metric names.
const (
	HardenedName = "ghostsock.connection.hardened"
	CountName    = "ghostsock.connection.count"
	EndedName    = "ghostsock.connection.ended"
	SilenceName  = "ghostsock.connection.silence"
	SlowPathName = "ghostsock.connection.slow_path"
)

// silenceBuckets are the silence histogram's boundaries, in seconds: from
// a LAN's RTO to the half hour an unbounded busy connection can take.
var silenceBuckets = []float64{0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 300, 900, 1800}

// Option configures New.
type Option func(*config)

type config struct{ mp metric.MeterProvider }

// WithMeterProvider makes New take its meter from mp instead of the global
// provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// Observer records tuning's connection events as metrics. It is a
// tuning.Observer; New makes one.
type Observer struct {
	hardened metric.Int64Counter
	count    metric.Int64UpDownCounter
	ended    metric.Int64Counter
	silence  metric.Float64Histogram
	slowPath metric.Int64Counter

	// opts[side][family] and endOpts[side][family][cause]: every attribute
	// set there can be, built once, so that recording allocates nothing.
	opts    [3][2]metric.MeasurementOption
	endOpts [3][2][tuning.CauseOther + 1]metric.MeasurementOption
}

var _ tuning.Observer = (*Observer)(nil)

// New returns an Observer with its instruments made from the meter named
// ScopeName. An error is the MeterProvider's, wrapped.
func New(opts ...Option) (*Observer, error) {
	c := config{}
	for _, o := range opts {
		o(&c)
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	m := c.mp.Meter(ScopeName)
	o := &Observer{}
	var err error
	if o.hardened, err = m.Int64Counter(HardenedName, metric.WithUnit("{connection}"),
		metric.WithDescription("TCP connections dialed or accepted with ghostsock's dead-peer options set.")); err != nil {
		return nil, fmt.Errorf("ghostmetrics: %s: %w", HardenedName, err)
	}
	if o.count, err = m.Int64UpDownCounter(CountName, metric.WithUnit("{connection}"),
		metric.WithDescription("ghostsock's TCP connections open now.")); err != nil {
		return nil, fmt.Errorf("ghostmetrics: %s: %w", CountName, err)
	}
	if o.ended, err = m.Int64Counter(EndedName, metric.WithUnit("{connection}"),
		metric.WithDescription("ghostsock's TCP connections ended, by cause: reaped_idle and reaped_busy are vanished peers the kernel found, window_stall a live reader cut.")); err != nil {
		return nil, fmt.Errorf("ghostmetrics: %s: %w", EndedName, err)
	}
	if o.silence, err = m.Float64Histogram(SilenceName, metric.WithUnit("s"),
		metric.WithDescription("Time from the peer's last ACK to the error that ended a connection."),
		metric.WithExplicitBucketBoundaries(silenceBuckets...)); err != nil {
		return nil, fmt.Errorf("ghostmetrics: %s: %w", SilenceName, err)
	}
	if o.slowPath, err = m.Int64Counter(SlowPathName, metric.WithUnit("{connection}"),
		metric.WithDescription("ghostsock's TCP connections whose RTO grew past the path their Config's bounds allow for (tuning.EventSlowPath): for them, detection may come later than the bounds say.")); err != nil {
		return nil, fmt.Errorf("ghostmetrics: %s: %w", SlowPathName, err)
	}
	for side := tuning.SideDialed; side <= tuning.SideAccepted; side++ {
		for fam, nt := range []attribute.KeyValue{semconv.NetworkTypeIPv4, semconv.NetworkTypeIPv6} {
			base := []attribute.KeyValue{SideKey.String(side.String()), semconv.NetworkTransportTCP, nt}
			o.opts[side][fam] = metric.WithAttributeSet(attribute.NewSet(base...))
			for cause := range tuning.CauseOther + 1 {
				o.endOpts[side][fam][cause] = metric.WithAttributeSet(attribute.NewSet(append(base, EndCauseKey.String(cause.String()))...))
			}
		}
	}
	return o, nil
}

// Observe records e.
func (o *Observer) Observe(e tuning.Event) {
	if e.Side != tuning.SideDialed && e.Side != tuning.SideAccepted {
		return
	}
	fam := family(e.Local)
	ctx := contextBackground
	switch e.Kind {
	case tuning.EventOpened:
		o.hardened.Add(ctx, 1, o.opts[e.Side][fam])
		o.count.Add(ctx, 1, o.opts[e.Side][fam])
	case tuning.EventEnded:
		cause := e.Cause
		if cause > tuning.CauseOther {
			cause = tuning.CauseOther
		}
		o.count.Add(ctx, -1, o.opts[e.Side][fam])
		o.ended.Add(ctx, 1, o.endOpts[e.Side][fam][cause])
		if e.Err != nil && e.SinceACK >= 0 {
			o.silence.Record(ctx, e.SinceACK.Seconds(), o.endOpts[e.Side][fam][cause])
		}
	case tuning.EventSlowPath:
		o.slowPath.Add(ctx, 1, o.opts[e.Side][fam])
	}
}

// family is 0 for IPv4 (and IPv4-mapped) addresses, 1 for IPv6.
func family(a net.Addr) int {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.To4() == nil && len(ta.IP) == net.IPv6len {
		return 1
	}
	return 0
}

// contextBackground is the context measurements are recorded with: the
// events come from socket calls, which carry none.
var contextBackground = context.Background()
