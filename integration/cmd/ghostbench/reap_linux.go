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
	bound, _ := c.Bounds()
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
		return "", fmt.Errorf("dialing: %w", dialErr)
	}
	var loaded reading
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		if loaded, err = readServer(server); err != nil {
			return "", err
		}
		if loaded.Open >= n {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("server holds %d of %d connections after 5 minutes", loaded.Open, n)
		}
	}

	fmt.Printf("part 4: clients vanish; bound %v\n", bound)
	if err := l.Vanish(lab.Client); err != nil {
		return "", err
	}
	vanished := time.Now()
	peak := loaded
	var last reading
	for deadline := vanished.Add(bound + 30*time.Second); ; time.Sleep(250 * time.Millisecond) {
		if last, err = readServer(server); err != nil {
			return "", err
		}
		peak.rss, peak.fds = max(peak.rss, last.rss), max(peak.fds, last.fds)
		peak.HeapBytes, peak.Goroutines = max(peak.HeapBytes, last.HeapBytes), max(peak.Goroutines, last.Goroutines)
		if last.Open == 0 || time.Now().After(deadline) {
			break
		}
	}
	reapCPU := last.cpu - loaded.cpu
	if _, err := server.ask("gc", time.Minute); err != nil {
		return "", err
	}
	after, err := readServer(server)
	if err != nil {
		return "", err
	}

	took := time.Unix(0, last.LastEnd).Sub(vanished)
	fmt.Fprintf(&b, "One gRPC server process (grpcserver.WrapListener and grpcserver.Options with ForBudget(%v): bound %v) holding %d connections from %d client addresses, each past the HTTP/2 preface so that the server holds a full transport. Then every client vanishes at once (blackhole routes).\n\n", o.reapBudget, bound, n, len(srcs))
	if last.Open > 0 {
		fmt.Fprintf(&b, "**Not all reaped:** %d connections still open %v after the vanishing.\n\n", last.Open, time.Since(vanished).Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "| | value |\n| --- | ---: |\n")
	fmt.Fprintf(&b, "| last socket gone after | %.2f s (bound %v, goal bound + 2 s) |\n", took.Seconds(), bound)
	fmt.Fprintf(&b, "| server CPU from the vanishing to the last socket | %.2f s |\n", reapCPU.Seconds())
	b.WriteString("\n| server process | before connections | holding them | peak while reaping | after (GC, memory returned) |\n| --- | ---: | ---: | ---: | ---: |\n")
	fmt.Fprintf(&b, "| open connections | %d | %d | | %d |\n", base.Open, loaded.Open, after.Open)
	fmt.Fprintf(&b, "| file descriptors | %d | %d | %d | %d |\n", base.fds, loaded.fds, peak.fds, after.fds)
	fmt.Fprintf(&b, "| goroutines | %d | %d | %d | %d |\n", base.Goroutines, loaded.Goroutines, peak.Goroutines, after.Goroutines)
	fmt.Fprintf(&b, "| heap in use MiB | %.1f | %.1f | %.1f | %.1f |\n", mib(base.HeapBytes), mib(loaded.HeapBytes), mib(peak.HeapBytes), mib(after.HeapBytes))
	fmt.Fprintf(&b, "| RSS MiB | %.1f | %.1f | %.1f | %.1f |\n", mib(uint64(base.rss)), mib(uint64(loaded.rss)), mib(uint64(peak.rss)), mib(uint64(after.rss)))
	return b.String(), nil
}
