package tuning_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/tuning"
)

// Inspect a connection: the kernel's view, a verdict, and when the kernel
// would end it if the peer vanished now.
func ExampleInspect() {
	c, err := tuning.ForBudget(20 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := c.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	conn, err := c.DialFunc(nil)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	s, err := tuning.Inspect(conn)
	if err != nil {
		log.Fatal(err)
	}
	idle, _ := c.Bounds()
	fmt.Println(s.State, s.Verdict(), s.Guarded, s.Options.UserTimeout)
	fmt.Println("ends within the idle bound:", s.EndsIn() <= idle)
	// Output:
	// ESTABLISHED alive true 17s
	// ends within the idle bound: true
}

// Classify the error an application sees, however net/http or grpc-go
// wrapped it.
func ExampleClassify() {
	reaped := &url.Error{Op: "Get", URL: "http://api.example.com/", Err: &net.OpError{
		Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}}
	fmt.Println(tuning.Classify(reaped))
	fmt.Println(tuning.Classify(errors.New(`rpc error: code = Unavailable desc = error reading from server: read tcp 10.0.0.1:40000->10.0.0.2:443: read: connection reset by peer`)))
	fmt.Println(tuning.Classify(os.ErrDeadlineExceeded))
	// Output:
	// silent_peer
	// reset
	// other
}

// A plain function as the Observer, for callers without OpenTelemetry.
func ExampleNewObserver() {
	c, err := tuning.ForBudget(20 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	events := make(chan tuning.Event, 4)
	c.Observer = tuning.NewObserver(func(e tuning.Event) { events <- e })

	ln, err := c.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	conn, err := c.DialFunc(nil)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	e := <-events
	fmt.Println(e.Kind, e.Side)
	conn.Close()
	e = <-events
	fmt.Println(e.Kind, e.Side, e.Cause)
	// Output:
	// opened dialed
	// ended dialed closed
}
