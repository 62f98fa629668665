// Package metricstest reads back what package ghostmetrics recorded, from
// an OpenTelemetry SDK ManualReader, for tests that compare counts.
package metricstest

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Meter is a MeterProvider whose readings a test can take.
type Meter struct {
	Reader   *sdkmetric.ManualReader
	Provider *sdkmetric.MeterProvider
}

// New returns a Meter with a fresh SDK provider and reader.
func New() *Meter {
	r := sdkmetric.NewManualReader()
	return &Meter{Reader: r, Provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))}
}

// Reading is one collection: sums and histogram counts by series, each
// named metric{key=value,...} with the attributes sorted and
// network.transport left out.
type Reading struct {
	Sums       map[string]int64
	Histograms map[string]metricdata.HistogramDataPoint[float64]
}

// Read collects now.
func (m *Meter) Read() (Reading, error) {
	var rm metricdata.ResourceMetrics
	if err := m.Reader.Collect(context.Background(), &rm); err != nil {
		return Reading{}, fmt.Errorf("metricstest: collect: %w", err)
	}
	r := Reading{Sums: map[string]int64{}, Histograms: map[string]metricdata.HistogramDataPoint[float64]{}}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					r.Sums[Series(mt.Name, p.Attributes)] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					r.Histograms[Series(mt.Name, p.Attributes)] = p
				}
			}
		}
	}
	return r, nil
}

// Series names a metric's series as Reading keys it.
func Series(name string, set attribute.Set) string {
	var kv []string
	for _, a := range set.ToSlice() {
		if a.Key == "network.transport" {
			continue
		}
		kv = append(kv, string(a.Key)+"="+a.Value.Emit())
	}
	sort.Strings(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

// Sum adds the sums of every series of metric name whose attributes
// include all of want (key=value strings).
func (r Reading) Sum(name string, want ...string) int64 {
	var n int64
	for k, v := range r.Sums {
		if match(k, name, want) {
			n += v
		}
	}
	return n
}

// Observations is how many values the histogram name recorded in the
// series matching want, and their sum.
func (r Reading) Observations(name string, want ...string) (count uint64, sum float64, maxv float64) {
	for k, p := range r.Histograms {
		if match(k, name, want) {
			count += p.Count
			sum += p.Sum
			if m, ok := p.Max.Value(); ok && m > maxv {
				maxv = m
			}
		}
	}
	return count, sum, maxv
}

func match(series, name string, want []string) bool {
	if !strings.HasPrefix(series, name+"{") {
		return false
	}
	attrs := strings.Split(strings.TrimSuffix(strings.TrimPrefix(series, name+"{"), "}"), ",")
	for _, w := range want {
		found := false
		for _, a := range attrs {
			if a == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
