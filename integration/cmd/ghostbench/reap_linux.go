package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/integration/fleet"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/integration/testsvc"
	"github.com/ghostsock/ghostsock/tuning"
)

// raiseNoFile lifts RLIMIT_NOFILE to n for this process (root may raise
// the hard limit; others get what the hard limit allows).
func raiseNoFile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	want := syscall.Rlimit{Cur: n, Max: max(n, lim.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		if lim.Max < n {
			return fmt.Errorf("RLIMIT_NOFILE: need %d descriptors, hard limit %d: %w", n, lim.Max, err)
		}
		return err
	}
	return nil
}

// reapServer is the child role: a gRPC server with ghostsock on the
// listener passed as fd 3, reporting how many connections it holds.
func reapServer(budget time.Duration, n int) {
	if err := raiseNoFile(uint64(n) + fdHeadroom); err != nil {
		fail(err)
	}
	c, err := tuning.ForBudget(budget)
	if err != nil {
		fail(err)
	}
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fail(err)
	}
	w := testsvc.NewConnWatcher()
	srv := grpc.NewServer(append(grpcserver.Options(c), grpc.StatsHandler(w))...)
	testsvc.Register(srv)
	go srv.Serve(grpcserver.WrapListener(ln, c))
	serve(func(r *report) {
		r.Open = w.Open()
		if t := w.LastEnd(); !t.IsZero() {
			r.LastEnd = t.UnixNano()
		}
	})
}

// preface is what an HTTP/2 client sends first: the connection preface and
// an empty SETTINGS frame. After it the gRPC server holds a full transport
// for the connection, as for a real client.
var preface = append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)

// reading is the server process seen from outside at one moment.
type reading struct {
	report
	fds int
	rss int64
	cpu time.Duration
}

func readServer(c *child) (reading, error) {
	r, err := c.ask("stats", time.Minute)
	if err != nil {
		return reading{}, err
	}
	pid := c.Cmd.Process.Pid
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return reading{}, err
	}
	rss, err := fleet.RSS(pid)
	if err != nil {
		return reading{}, err
	}
	cpu, err := fleet.CPUTime(pid)
	return reading{report: r, fds: len(ents), rss: rss, cpu: cpu}, err
}

// fdHeadroom is what a process needs besides the connections.
const fdHeadroom = 1024

func runReap(o options) (string, error) {
	n := o.reapN
	var b strings.Builder
	if err := raiseNoFile(uint64(n) + fdHeadroom); err != nil {
		// Without CAP_SYS_RESOURCE the hard limit is the ceiling, for this
		// process (the clients) and for the server alike. Say so, and run
		// what fits.
		var lim syscall.Rlimit
		if e := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); e != nil || lim.Max <= 2*fdHeadroom {
			return "", err
		}
		n = int(lim.Max) - fdHeadroom
		fmt.Fprintf(&b, "**Asked for %d connections; ran %d.** This machine's hard RLIMIT_NOFILE is %d and the benchmark may not raise it (%v; raising it needs CAP_SYS_RESOURCE).\n\n", o.reapN, n, lim.Max, err)
		if err := raiseNoFile(uint64(n) + fdHeadroom); err != nil {
			return "", err
		}
	}
	c, err := tuning.ForBudget(o.reapBudget)
	if err != nil {
		return "", err
	}
	// Idle connections, but some of the last frames may still be
	// unacknowledged when the clients vanish: either bound may apply.
	idle, busy := c.Bounds()
	bound := max(idle, busy)
	l, err := lab.New()
	if err != nil {
		return "", err
	}
	defer l.Close()
	// About 28,000 ephemeral ports per address pair: 20,000 per address.
	extra, err := l.AddClientAddrs((n - 1) / 20000)
	if err != nil {
		return "", err
	}
	srcs := append([]netip.Addr{l.ClientAddr}, extra...)
	f, addr, err := l.ListenerFile()
	if err != nil {
		return "", err
	}
	server, err := startChild("reap server", []string{"-role", "reap-server", "-reap-budget", o.reapBudget.String(), "-reap", fmt.Sprint(n)}, f)
	f.Close()
	if err != nil {
		return "", err
	}
	defer server.Stop()
	if _, err := server.ask("", time.Minute); err != nil {
		return "", err
	}
	base, err := readServer(server)
	if err != nil {
		return "", err
	}

	var cycles [2]reapResult
	for i := range cycles {
		if cycles[i], err = reapCycle(l, server, srcs, addr, n, bound); err != nil {
			return "", fmt.Errorf("reap %d: %w", i+1, err)
		}
		if err := l.Restore(lab.Client); err != nil {
			return "", err
		}
	}

	fmt.Fprintf(&b, "One gRPC server process (grpcserver.WrapListener and grpcserver.Options with ForBudget(%v): bound %v) holding %d connections from %d client addresses, each past the HTTP/2 preface so that the server holds a full transport. Then every client vanishes at once (blackhole routes). Done twice on the same server process, to tell a leak from memory the runtime keeps for reuse.\n\n", o.reapBudget, bound, n, len(srcs))
	b.WriteString("| | first reap | second reap |\n| --- | ---: | ---: |\n")
	fmt.Fprintf(&b, "| last socket gone after (bound %v, goal bound + 2 s) | %.2f s | %.2f s |\n", bound, cycles[0].took.Seconds(), cycles[1].took.Seconds())
	fmt.Fprintf(&b, "| connections left open | %d | %d |\n", cycles[0].last.Open, cycles[1].last.Open)
	fmt.Fprintf(&b, "| server CPU from the vanishing to the last socket | %.2f s | %.2f s |\n", cycles[0].cpu.Seconds(), cycles[1].cpu.Seconds())
	b.WriteString("\n| server process | before connections | holding them | peak while reaping | after the first reap | after the second |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	c0, c1 := cycles[0], cycles[1]
	fmt.Fprintf(&b, "| file descriptors | %d | %d | %d | %d | %d |\n", base.fds, c0.loaded.fds, c0.peak.fds, c0.after.fds, c1.after.fds)
	fmt.Fprintf(&b, "| goroutines | %d | %d | %d | %d | %d |\n", base.Goroutines, c0.loaded.Goroutines, c0.peak.Goroutines, c0.after.Goroutines, c1.after.Goroutines)
	fmt.Fprintf(&b, "| heap in use MiB | %.1f | %.1f | %.1f | %.1f | %.1f |\n", mib(base.HeapBytes), mib(c0.loaded.HeapBytes), mib(c0.peak.HeapBytes), mib(c0.after.HeapBytes), mib(c1.after.HeapBytes))
	fmt.Fprintf(&b, "| RSS MiB | %.1f | %.1f | %.1f | %.1f | %.1f |\n", mib(uint64(base.rss)), mib(uint64(c0.loaded.rss)), mib(uint64(c0.peak.rss)), mib(uint64(c0.after.rss)), mib(uint64(c1.after.rss)))
	b.WriteString("\n\"After\" is read once the server has collected garbage twice and returned free memory to the system. The heap does not fall back to its first baseline because the Go runtime keeps the descriptor of every goroutine it ever ran, for reuse (golang/go#9869): a second reap that does not grow it is the sign of no leak.\n")
	return b.String(), nil
}

// reapResult is one fill-and-vanish cycle, seen from outside the server.
type reapResult struct {
	loaded, peak, last, after reading
	took, cpu                 time.Duration
}

// reapCycle opens n connections to addr from srcs, each past the HTTP/2
// preface, waits until the server holds them all, makes the clients
// vanish and follows the server until it holds none.
func reapCycle(l *lab.Lab, server *child, srcs []netip.Addr, addr net.Addr, n int, bound time.Duration) (reapResult, error) {
	var r reapResult
	fmt.Printf("part 4: opening %d connections from %d addresses\n", n, len(srcs))
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	var dialErr error
	var mu sync.Mutex
	work := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range work {
				d := net.Dialer{KeepAlive: -1, LocalAddr: &net.TCPAddr{IP: srcs[i%len(srcs)].AsSlice()}}
				conn, err := d.Dial("tcp", addr.String())
				if err == nil {
					_, err = conn.Write(preface)
				}
				if err != nil {
					mu.Lock()
					dialErr = err
					mu.Unlock()
					continue
				}
				conns[i] = conn
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if dialErr != nil {
		return r, fmt.Errorf("dialing: %w", dialErr)
	}
	var err error
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		if r.loaded, err = readServer(server); err != nil {
			return r, err
		}
		if r.loaded.Open >= n {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("server holds %d of %d connections after 5 minutes", r.loaded.Open, n)
		}
	}

	fmt.Printf("part 4: clients vanish; bound %v\n", bound)
	if err := l.Vanish(lab.Client); err != nil {
		return r, err
	}
	vanished := time.Now()
	r.peak = r.loaded
	for deadline := vanished.Add(bound + 30*time.Second); ; time.Sleep(250 * time.Millisecond) {
		if r.last, err = readServer(server); err != nil {
			return r, err
		}
		r.peak.rss, r.peak.fds = max(r.peak.rss, r.last.rss), max(r.peak.fds, r.last.fds)
		r.peak.HeapBytes, r.peak.Goroutines = max(r.peak.HeapBytes, r.last.HeapBytes), max(r.peak.Goroutines, r.last.Goroutines)
		if r.last.Open == 0 || time.Now().After(deadline) {
			break
		}
	}
	r.took = time.Unix(0, r.last.LastEnd).Sub(vanished)
	r.cpu = r.last.cpu - r.loaded.cpu
	if _, err := server.ask("gc", time.Minute); err != nil {
		return r, err
	}
	r.after, err = readServer(server)
	return r, err
}
