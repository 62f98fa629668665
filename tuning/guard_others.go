//go:build !linux

package tuning

import (
	"syscall"
	"time"
)

// The guard needs TCP_INFO and Linux's zero-window rules: Guard reports
// errors.ErrUnsupported elsewhere before it gets here.
const guardSupported = false

func sampleWindow(syscall.RawConn) (windowSample, error) {
	return windowSample{}, unsupported("TCP_INFO")
}

func setUserTimeout(syscall.RawConn, time.Duration) error { return unsupported("Guard") }

func setRTOMax(syscall.RawConn, time.Duration) error { return unsupported("Guard") }

type sourceWait struct{}

func newSourceWait(syscall.RawConn) *sourceWait { return &sourceWait{} }

func (*sourceWait) await() int { return 0 }
