package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/tuning"
)

// Part 7: live connections on bad paths. Every peer stays; the path loses
// packets at random or queues them behind a bulk download for a second or
// two, and the part counts the connections the kernel cut anyway.

// badPath is one of part 7's paths.
type badPath struct {
	name string
	path lab.Path
	bulk bool // a bulk download shares the link and keeps its queue full
}

func badPaths() []badPath {
	lossy := func(p float64) lab.Path {
		s := lab.Shape{Delay: 20 * time.Millisecond, Loss: p, Rate: 2 << 20, Queue: 50 * time.Millisecond}
		return lab.Path{Up: s, Down: s}
	}
	bloated := func(q time.Duration) lab.Path {
		up := lab.Shape{Delay: 20 * time.Millisecond}
		down := lab.Shape{Delay: 20 * time.Millisecond, Rate: 128 << 10, Queue: q} // 1 Mbit/s down
		return lab.Path{Up: up, Down: down}
	}
	return []badPath{
		{"1 % loss each way, 40 ms RTT", lossy(0.01), false},
		{"5 % loss each way, 40 ms RTT", lossy(0.05), false},
		{"1 s queue down (1 Mbit/s, full), 40 ms RTT", bloated(time.Second), true},
		{"2 s queue down (1 Mbit/s, full), 40 ms RTT", bloated(2 * time.Second), true},
	}
}

// errBulkEnded says a cell's queue was not kept full: not a measurement.
var errBulkEnded = errors.New("the bulk download that keeps the queue full ended")

// connectTries is how many times part 7 dials a stream before it gives up
// on the cell, as a client retries a failed connect.
const connectTries = 5

// falsePositives holds n live connections of c over p for hold, busy
// (the server streams to the client, which reads) or idle, and returns how
// many the kernel ended, the first of their errors, and how many connects
// failed and were retried: Linux holds the handshake to the user timeout
// too, so a connect whose SYN or SYN-ACK is lost at each of its tries fails
// with ETIMEDOUT.
func falsePositives(c tuning.Config, p badPath, busy bool, n int, hold time.Duration) (cut int, first error, failedConnects int, err error) {
	l, err := lab.NewPath(p.path)
	if err != nil {
		return 0, nil, 0, err
	}
	defer l.Close()
	ln, err := l.Listen(c.Listen, "tcp", l.ServerAddrPort(0))
	if err != nil {
		return 0, nil, 0, err
	}
	defer ln.Close()
	dial := c.Dialer()
	cl := &cell{done: make(chan struct{})}
	defer cl.close()
	if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
		d.SetDeadline(time.Now().Add(time.Minute)) // no Accept waits for ever
	}
	streams := n
	if p.bulk {
		streams++ // the last one is the bulk download, not counted
	}
	for i := range streams {
		client, failed, err := connect(dial, ln.Addr().String())
		failedConnects += failed
		if err != nil {
			return 0, nil, failedConnects, err
		}
		server, err := ln.Accept()
		if err != nil {
			client.Close()
			return 0, nil, failedConnects, err
		}
		cl.run(client, server, i < n, busy)
	}
	time.Sleep(hold)
	cut, first, bulk := cl.seen()
	if bulk != nil {
		return 0, nil, failedConnects, fmt.Errorf("%w (%w)", errBulkEnded, bulk)
	}
	return cut, first, failedConnects, nil
}

// connect dials addr as a client retries a failed connect: again after
// ETIMEDOUT, up to connectTries in all. failed counts the tries that
// timed out and were retried.
func connect(dial *net.Dialer, addr string) (conn net.Conn, failed int, err error) {
	for try := 1; ; try++ {
		conn, err = dial.Dial("tcp", addr)
		if err == nil {
			return conn, failed, nil
		}
		if !errors.Is(err, syscall.ETIMEDOUT) || try == connectTries {
			return nil, failed, fmt.Errorf("connect %d of %d: %w", try, connectTries, err)
		}
		failed++
	}
}

// cell is the connections of one part 7 cell and what ended them.
type cell struct {
	done chan struct{} // closed when the part closes the connections itself
	wg   sync.WaitGroup

	mu        sync.Mutex
	conns     []net.Conn
	cuts      int
	firstCut  error
	bulkEnded error // the bulk download ended: the queue was not kept full
}

// run keeps one connection going: the client reads what comes; the server
// streams (busy, or the uncounted bulk download) or waits. An end the
// kernel chose is a cut of a counted connection, or voids the cell.
func (cl *cell) run(client, server net.Conn, counted, busy bool) {
	cl.mu.Lock()
	cl.conns = append(cl.conns, client, server)
	cl.mu.Unlock()
	var once sync.Once // a cut counts once, whichever end saw it
	end := func(e error) {
		switch {
		case !cl.ended(e):
		case counted:
			once.Do(func() { cl.cut(e) })
		default:
			cl.mu.Lock()
			cl.bulkEnded = e
			cl.mu.Unlock()
		}
	}
	cl.wg.Go(func() { // the client reads what comes
		_, e := io.Copy(io.Discard, client)
		end(e)
	})
	cl.wg.Go(func() { // the server streams, or waits
		if !busy && counted {
			_, e := io.Copy(io.Discard, server) // idle: nothing comes
			end(e)
			return
		}
		buf := make([]byte, 16<<10)
		for {
			if _, e := server.Write(buf); e != nil {
				end(e)
				return
			}
		}
	})
}

// ended says whether e is an end the kernel chose, not the part's own
// Close.
func (cl *cell) ended(e error) bool {
	select {
	case <-cl.done:
		return false
	default:
	}
	return e != nil && !errors.Is(e, net.ErrClosed) && !errors.Is(e, io.EOF)
}

// cut counts a counted connection the kernel ended.
func (cl *cell) cut(e error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.firstCut == nil {
		cl.firstCut = e
	}
	cl.cuts++
}

// seen is what the hold saw, read before the part's own Closes end
// anything.
func (cl *cell) seen() (cuts int, first, bulk error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.cuts, cl.firstCut, cl.bulkEnded
}

// close closes every connection and waits until their goroutines end.
func (cl *cell) close() {
	close(cl.done)
	cl.mu.Lock()
	for _, conn := range cl.conns {
		conn.Close()
	}
	cl.mu.Unlock()
	cl.wg.Wait()
}

func runFalsePositives(o options) (string, error) {
	const n = 10
	budgets := []time.Duration{5 * time.Second, 20 * time.Second}
	if o.smoke {
		budgets = budgets[:1]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Live connections only: %d per cell from tuning.Dialer to a tuning.Listen server over the lab's user-space link (lab.NewPath), held for three budgets, each cell in a lab of its own, all cells of a budget at once. Busy: the server streams to the client, which reads all it gets. Idle: nothing is sent but keepalive. On the queued paths a bulk download (not counted) keeps the 1 Mbit/s downlink's queue full for the whole hold. A cut is any connection the kernel ended (ETIMEDOUT) while both ends were alive. Linux holds a handshake to the user timeout as well (on 6.18 a SYN every second four times, then with doubling waits, while they fit): a connect that failed with ETIMEDOUT is retried, up to %d tries, as a client would, and counted under *failed connects*.\n\n", n, connectTries)
	fmt.Fprintf(&b, "| budget | path | connection | cut (of %d) | failed connects, retried | first error |\n| --- | --- | --- | ---: | ---: | --- |\n", n)
	for _, d := range budgets {
		c, err := tuning.ForBudget(d)
		if err != nil {
			return "", err
		}
		hold := 3 * d
		if o.smoke {
			hold = d
		}
		type result struct {
			row string
			err error
		}
		var rows []chan result
		for _, p := range badPaths() {
			for _, busy := range []bool{true, false} {
				ch := make(chan result, 1)
				rows = append(rows, ch)
				go func() {
					kind := "idle"
					if busy {
						kind = "busy"
					}
					cut, first, failed, err := falsePositives(c, p, busy, n, hold)
					if errors.Is(err, errBulkEnded) {
						ch <- result{fmt.Sprintf("| %v | %s | %s | not measured | %d | %v |\n", d, p.name, kind, failed, err), nil}
						return
					}
					why := "-"
					if first != nil {
						why = first.Error()
						if i := strings.LastIndex(why, ": "); i >= 0 {
							why = why[i+2:]
						}
					}
					ch <- result{fmt.Sprintf("| %v | %s | %s | %d | %d | %s |\n", d, p.name, kind, cut, failed, why), err}
				}()
			}
		}
		fmt.Printf("part 7: budget %v, %d cells for %v\n", d, len(rows), hold)
		for _, ch := range rows {
			r := <-ch
			if r.err != nil {
				return "", r.err
			}
			b.WriteString(r.row)
		}
	}
	return b.String(), nil
}
