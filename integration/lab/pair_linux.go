package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// Tolerances of a detection measured in the lab against the bound that
// tuning.Config.Bounds predicts. Early: the peer's last packet precedes the
// vanishing by the time the ip command takes, so silence starts a little
// before the clock does. Late: the kernel acts on its timers, and a busy
// connection's user timeout runs from its first retransmission, one RTO
// (at least TCP_RTO_MIN, 200 ms) after the first lost byte; plus a margin
// for a loaded 2-core machine. The integration tests assert these; the
// benchmarks count against them.
const (
	Early  = 300 * time.Millisecond
	RTOMin = 200 * time.Millisecond
	Late   = RTOMin + 600*time.Millisecond
)

// TCPPair returns a connection dialed from the client host with dial and
// its other end, accepted on the server host from a listener made with
// listen (closed before TCPPair returns). Both ends have just heard from
// each other: one byte went each way.
func (l *Lab) TCPPair(listen func(context.Context, string, string) (net.Listener, error), dial func(string, string) (net.Conn, error)) (client, server net.Conn, err error) {
	ln, err := l.Listen(listen, "tcp", l.ServerAddrPort(0))
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	if server = <-accepted; server == nil {
		client.Close()
		return nil, nil, fmt.Errorf("lab: accept failed")
	}
	one := make([]byte, 1)
	for _, step := range []struct {
		from, to net.Conn
	}{{client, server}, {server, client}} {
		if _, err = step.from.Write(one); err == nil {
			_, err = io.ReadFull(step.to, one)
		}
		if err != nil {
			client.Close()
			server.Close()
			return nil, nil, fmt.Errorf("lab: round trip: %w", err)
		}
	}
	return client, server, nil
}
