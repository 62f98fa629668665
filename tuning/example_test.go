package tuning_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/ghostsock/ghostsock/tuning"
)

// A budget in, consistent kernel settings out.
func ExampleForBudget() {
	c, err := tuning.ForBudget(30 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	idle, busy := c.Bounds()
	fmt.Println("user timeout:", c.UserTimeout)
	fmt.Println("keepalive:", c.KeepAlive.Idle, c.KeepAlive.Interval, c.KeepAlive.Count)
	fmt.Println("detected within:", idle, "idle,", busy, "busy, at worst on a LAN")
	// Output:
	// user timeout: 26s
	// keepalive: 11s 5s 3
	// detected within: 29.29s idle, 28.1415s busy, at worst on a LAN
}

func ExampleConfig_Validate() {
	// A hand-filled Config that forgot keepalive would never find an idle
	// peer that vanished: Validate says so, and names the way to choose it.
	c := tuning.Config{UserTimeout: 1500 * time.Microsecond}
	fmt.Println(c.Validate())
	// Output:
	// ghostsock: invalid config: UserTimeout = 1.5ms: must be a whole number of milliseconds (the kernel's unit)
	// ghostsock: invalid config: KeepAlive.Enable = false: keepalive off finds no idle peer that vanished, ever: turn it on (ForBudget does), or set IdleUnwatched to choose that (Lean does)
}

func ExampleConfig_Bounds() {
	// Count is ignored once a user timeout is set: the kernel ends the idle
	// connection at the first probe after 4 s of silence.
	c := tuning.Config{
		UserTimeout: 4 * time.Second,
		KeepAlive:   net.KeepAliveConfig{Enable: true, Idle: 2 * time.Second, Interval: time.Second, Count: 10},
	}
	earliestIdle, earliestBusy := c.Earliest()
	idle, busy := c.Bounds()
	fmt.Println("idle:", earliestIdle, "to", idle)
	fmt.Println("busy:", earliestBusy, "to", busy)
	// Output:
	// idle: 4s to 4.53s
	// busy: 4s to 4.98s
}

func ExampleConfig_Dialer() {
	c, _ := tuning.ForBudget(10 * time.Second)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	conn, err := c.Dialer().Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	held, _ := tuning.Read(conn)
	fmt.Println(held == c)
	// Output: true
}

func ExampleConfig_Control() {
	c, _ := tuning.ForBudget(10 * time.Second)
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: -1, Control: c.Control}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	conn, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	held, _ := tuning.Read(conn)
	fmt.Println(held.UserTimeout)
	// Output: 8s
}

// An http.Server whose accepted connections detect vanished clients.
func ExampleConfig_Listen() {
	c, _ := tuning.ForBudget(20 * time.Second)
	ln, err := c.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Println(ln.Addr().Network())
	// Output: tcp
}

// Hardening a listener someone else made, for example for http.Server.
func ExampleConfig_WrapListener() {
	c, _ := tuning.ForBudget(20 * time.Second)
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ln := c.WrapListener(plain)
	defer ln.Close()
	go func() {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer conn.Close()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	conn, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	held, _ := tuning.Read(conn)
	fmt.Printf("%T %v\n", conn, held == c.GuardHolds())
	bare := conn.(*tuning.Conn).NetConn() // the *net.TCPConn, for code that needs it
	fmt.Printf("%T\n", bare)
	// Output:
	// *tuning.Conn true
	// *net.TCPConn
}

func ExampleConfig_Apply() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	c, _ := tuning.ForBudget(9 * time.Second)
	if err := c.Apply(conn); err != nil {
		log.Fatal(err)
	}
	held, _ := tuning.Read(conn)
	fmt.Println(held.UserTimeout, held.KeepAlive.Idle, held.KeepAlive.Interval, held.KeepAlive.Count)
	// Output: 7s 4s 1s 3
}

func ExampleRead() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String()) // Go's defaults: keepalive 15 s, 15 s, 9
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	held, err := tuning.Read(conn)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(held.UserTimeout, held.KeepAlive.Enable, held.KeepAlive.Idle, held.KeepAlive.Count)
	// Output: 0s true 15s 9
}

// A raw TCP client that streams to a consumer which may pause: DialFunc
// guards its connections, so its writes survive the pause. As an
// http.Transport's DialContext it guards request bodies the same way.
func ExampleConfig_DialFunc() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	c, _ := tuning.ForBudget(20 * time.Second)
	dial := c.DialFunc(nil) // nil: dial with c.Dialer()
	conn, err := dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	held, _ := tuning.Read(conn)
	fmt.Printf("%T: user timeout %v, retransmissions and probes at least every %v\n", conn, held.UserTimeout, held.RTOMax)
	// Output: *tuning.Conn: user timeout 17s, retransmissions and probes at least every 2.1s
}

// A dialer you do not own (a mesh's, a tunnel's): DialFunc sets c's options
// on what it returns. NoGuard leaves the guard off, for protocols that keep
// reading the socket (HTTP/2, gRPC, request and response).
func ExampleConfig_DialFunc_noGuard() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	c, _ := tuning.ForBudget(20 * time.Second)
	c.NoGuard = true
	theirs := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := c.DialFunc(theirs.DialContext)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	held, _ := tuning.Read(conn)
	fmt.Printf("%T: user timeout %v, keepalive %v+%dx%v\n", conn, held.UserTimeout,
		held.KeepAlive.Idle, held.KeepAlive.Count, held.KeepAlive.Interval)
	// Output: *tuning.Conn: user timeout 17s, keepalive 8s+3x3s
}

// One end probes for both: the server keeps the budget's keepalive, the
// client sends nothing while idle and learns of a vanished server when it
// next sends.
func ExampleConfig_Lean() {
	c, _ := tuning.ForBudget(20 * time.Second)
	lean := c.Lean()
	idle, busy := lean.Bounds()
	fmt.Println("client keepalive:", lean.KeepAlive.Enable, "user timeout:", lean.UserTimeout)
	fmt.Println("idle client notices a vanished server:", idle != tuning.Never)
	fmt.Println("its next request fails within the budget:", busy <= 20*time.Second)
	// Output:
	// client keepalive: false user timeout: 17s
	// idle client notices a vanished server: false
	// its next request fails within the budget: true
}

// Probes per hour for one probing end of an idle connection, as ForBudget
// sets keepalive: one probe, answered, after each Idle of silence. What
// the probes cost a phone, measured, is BENCHMARKS.md, part 8.
func ExampleForBudget_probes() {
	fmt.Println("| budget | keepalive idle | probes per hour, one end | with `Lean` on the client |")
	fmt.Println("| --- | --- | --- | --- |")
	for _, d := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute} {
		c, err := tuning.ForBudget(d)
		if err != nil {
			panic(err)
		}
		perHour := int(time.Hour / c.KeepAlive.Idle)
		fmt.Printf("| %v | %v | %d | client 0, server %d |\n", d, c.KeepAlive.Idle, perHour, perHour)
	}
	// Output:
	// | budget | keepalive idle | probes per hour, one end | with `Lean` on the client |
	// | --- | --- | --- | --- |
	// | 5s | 1s | 3600 | client 0, server 3600 |
	// | 10s | 5s | 720 | client 0, server 720 |
	// | 20s | 8s | 450 | client 0, server 450 |
	// | 30s | 11s | 327 | client 0, server 327 |
	// | 1m0s | 23s | 156 | client 0, server 156 |
	// | 5m0s | 1m56s | 31 | client 0, server 31 |
	// | 10m0s | 3m53s | 15 | client 0, server 15 |
}
