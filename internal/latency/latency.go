// Package latency records the time of each operation in a benchmark and
// reports percentiles as benchmark metrics, so that benchstat can compare
// them like ns/op.
package latency

import (
	"slices"
	"testing"
	"time"
)

// Recorder collects durations. The zero value is ready to use.
type Recorder struct{ ds []time.Duration }

// Time runs fn and records how long it took.
func (r *Recorder) Time(fn func() error) error {
	start := time.Now()
	err := fn()
	r.ds = append(r.ds, time.Since(start))
	return err
}

// Report adds p50-µs and p99-µs to b's results.
func (r *Recorder) Report(b *testing.B) {
	if len(r.ds) == 0 {
		return
	}
	slices.Sort(r.ds)
	at := func(q float64) float64 {
		return float64(r.ds[int(q*float64(len(r.ds)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}
