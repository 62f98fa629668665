package httptransport_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/ghostsock/ghostsock/httptransport"
	"github.com/ghostsock/ghostsock/tuning"
)

func ExampleNew() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer srv.Close()

	c, err := tuning.ForBudget(20 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: httptransport.New(c)}
	resp, err := client.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: hello
}

func ExampleHarden() {
	c, _ := tuning.ForBudget(20 * time.Second)
	tr := http.DefaultTransport.(*http.Transport).Clone() // your own transport, proxy and TLS settings
	httptransport.Harden(tr, c)
	client := &http.Client{Transport: tr}
	_ = client
}

// An http.Server reaps vanished clients when its listener comes from
// tuning: Listen, or WrapListener around a listener you already have.
func Example_server() {
	c, _ := tuning.ForBudget(30 * time.Second)
	ln, err := c.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
}

// An h2c client (HTTP/2 without TLS, prior knowledge) on x/net's
// transport, with the kernel, not PING frames, watching its connections.
func ExampleNewH2C() {
	c, err := tuning.ForBudget(20 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: httptransport.NewH2C(c)}
	_ = client // client.Get("http://api.internal:8080/") speaks HTTP/2 in clear text
}
