//go:build linux

package integration

import (
	"sync"
	"time"
)

// The lab's timing assertions compare a detection with what the kernel
// promises (Bounds), plus one RTO and a margin (lab.Late). What a test
// measures, though, is when this process saw the end: when its goroutine
// was scheduled after the kernel's error. On a 2-core machine running the
// whole -race suite, with this package's tests in parallel and other
// packages and jobs beside it, that can come late by more than the margin
// while the kernel was on time. schedLag measures it: a goroutine asks to
// wake every few milliseconds and records how late each wake-up came, and
// a timing assertion adds the worst lateness seen while it measured, and
// says so.
var schedLag = newLagMonitor(5*time.Millisecond, 2*time.Minute)

type lagSample struct {
	at   time.Time
	late time.Duration
}

type lagMonitor struct {
	mu      sync.Mutex
	samples []lagSample // a ring, oldest overwritten
	next    int
	once    sync.Once
	period  time.Duration
}

func newLagMonitor(period, keep time.Duration) *lagMonitor {
	return &lagMonitor{period: period, samples: make([]lagSample, 0, int(keep/period))}
}

func (m *lagMonitor) start() {
	m.once.Do(func() {
		go func() {
			for {
				before := time.Now()
				time.Sleep(m.period)
				now := time.Now()
				late := max(now.Sub(before)-m.period, 0)
				m.mu.Lock()
				if len(m.samples) < cap(m.samples) {
					m.samples = append(m.samples, lagSample{now, late})
				} else {
					m.samples[m.next] = lagSample{now, late}
					m.next = (m.next + 1) % len(m.samples)
				}
				m.mu.Unlock()
			}
		}()
	})
}

// worstSince is the latest a wake-up came since t.
func (m *lagMonitor) worstSince(t time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var worst time.Duration
	for _, s := range m.samples {
		if !s.at.Before(t) && s.late > worst {
			worst = s.late
		}
	}
	return worst
}
