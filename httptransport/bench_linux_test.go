package httptransport_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/internal/latency"
	"github.com/ghostsock/ghostsock/tuning"
)

// Requests through httptransport.New against a clone of
// http.DefaultTransport, over loopback, to the same server. Compare with
//
//	go test ./httptransport -run '^$' -bench . -count 10 | benchstat -col /transport -

func BenchmarkRequest(b *testing.B) {
	body := make([]byte, 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	c, err := tuning.ForBudget(20 * time.Second)
	if err != nil {
		b.Fatal(err)
	}
	for _, proto := range []string{"HTTP1", "HTTP2"} {
		srv := httptest.NewUnstartedServer(h)
		if proto == "HTTP2" {
			srv.EnableHTTP2 = true
			srv.StartTLS()
		} else {
			srv.Start()
		}
		for _, v := range []struct {
			name string
			tr   *http.Transport
		}{
			{"transport=DefaultTransport", http.DefaultTransport.(*http.Transport).Clone()},
			{"transport=ghostsock", httptransport.New(c)},
		} {
			if proto == "HTTP2" {
				v.tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
			}
			b.Run(proto+"/"+v.name, func(b *testing.B) {
				defer v.tr.CloseIdleConnections()
				client := &http.Client{Transport: v.tr}
				get := func() error {
					resp, err := client.Get(srv.URL)
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					_, err = io.Copy(io.Discard, resp.Body)
					return err
				}
				// Connect outside the timing, and check the protocol.
				resp, err := client.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if want := map[string]int{"HTTP1": 1, "HTTP2": 2}[proto]; resp.ProtoMajor != want {
					b.Fatalf("%s: got HTTP/%d", proto, resp.ProtoMajor)
				}
				var rec latency.Recorder
				for b.Loop() {
					if err := rec.Time(get); err != nil {
						b.Fatal(err)
					}
				}
				rec.Report(b)
			})
		}
		srv.Close()
	}
}
