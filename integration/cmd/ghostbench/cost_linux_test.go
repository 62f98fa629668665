//go:build linux

package main

import (
	"math"
	"testing"
)

// TestMedianInterval checks the order statistics against the binomial
// tables: for 15 values the 4th from each end (96.5 %), for 7 the 1st
// (98.4 %), for 6 the 1st (96.9 %), none for 5.
func TestMedianInterval(t *testing.T) {
	for _, c := range []struct{ n, k int }{{5, 0}, {6, 1}, {7, 1}, {9, 2}, {15, 4}, {20, 6}} {
		v := make([]float64, c.n)
		for i := range v {
			v[i] = float64(c.n - i) // reversed: the function sorts
		}
		lo, hi, ok := medianInterval(v)
		if c.k == 0 {
			if ok {
				t.Errorf("n=%d: an interval from too few values", c.n)
			}
			continue
		}
		if !ok || lo != float64(c.k) || hi != float64(c.n-c.k+1) {
			t.Errorf("n=%d: [%v, %v] %v, want the %d-th from each end", c.n, lo, hi, ok, c.k)
		}
	}
	if _, _, ok := medianInterval([]float64{math.NaN()}); ok {
		t.Error("one value")
	}
}
