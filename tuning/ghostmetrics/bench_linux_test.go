package ghostmetrics_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/tuning"
)

// BenchmarkDialAccept is one connection dialed with DialFunc and accepted
// from Listen on loopback, then both closed: counting off (Observer nil),
// with the plain hook doing nothing, and with ghostmetrics on an SDK.
func BenchmarkDialAccept(b *testing.B) {
	for _, mode := range []string{"off", "hook", "otel"} {
		b.Run(mode, func(b *testing.B) {
			c := observed(b, mode)
			ln, err := c.Listen(context.Background(), "tcp", "127.0.0.1:0")
			require.NoError(b, err)
			defer ln.Close()
			dial := c.DialFunc(nil)
			b.ReportAllocs()
			for b.Loop() {
				cl, err := dial(context.Background(), "tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				sv, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				cl.Close()
				sv.Close()
			}
		})
	}
}

// BenchmarkEnd is the end of an accepted connection by an error the
// kernel reports (a reset, which takes the same path as a reap: Read's
// error, one TCP_INFO read, Classify, and the record), the connection
// opened outside the timer.
func BenchmarkEnd(b *testing.B) {
	for _, mode := range []string{"off", "hook", "otel"} {
		b.Run(mode, func(b *testing.B) {
			c := observed(b, mode)
			ln, err := c.Listen(context.Background(), "tcp", "127.0.0.1:0")
			require.NoError(b, err)
			defer ln.Close()
			dial := c.DialFunc(nil)
			buf := make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				cl, err := dial(context.Background(), "tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				sv, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				tcp, ok := cl.(*net.TCPConn)
				if !ok {
					tcp = cl.(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn)
				}
				tcp.SetLinger(0)
				cl.Close()
				time.Sleep(time.Millisecond) // the RST arrives
				b.StartTimer()
				if _, err := sv.Read(buf); err == nil || err == io.EOF {
					b.Fatalf("read: %v, want a reset", err)
				}
				sv.Close()
			}
		})
	}
}

func observed(b *testing.B, mode string) tuning.Config {
	c, _ := loopback(b, true)
	switch mode {
	case "off":
		c.Observer = nil
	case "hook":
		c.Observer = tuning.NewObserver(func(tuning.Event) {})
	}
	return c
}
