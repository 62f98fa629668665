package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/ghostsock/ghostsock/grpcserver"
	"github.com/ghostsock/ghostsock/integration/fleet"
	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/integration/testsvc"
	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/internal/netns"
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

// reapClient is the child role that holds one server's share of the
// clients: "dial" opens n connections to addr from the comma-separated
// source addresses srcs, each past the HTTP/2 preface; "close" closes
// them. A process of its own, because the descriptors of 100,000 clients
// do not fit under one process's limit either.
func reapClient(addr, srcs string, n int) {
	if err := raiseNoFile(uint64(n) + fdHeadroom); err != nil {
		fail(err)
	}
	var from []net.IP
	for _, s := range strings.Split(srcs, ",") {
		from = append(from, net.ParseIP(s))
	}
	var conns []net.Conn
	closeAll := func(*report) error {
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		return nil
	}
	serveWith(nil, map[string]func(*report) error{
		"dial": func(r *report) error {
			closeAll(r)
			conns = make([]net.Conn, n)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var dialErr error
			retries := 0
			work := make(chan int)
			for range 64 {
				wg.Go(func() {
					for i := range work {
						// A SYN can go unanswered while a loaded server's
						// accept queue is full: try again, and count it.
						d := net.Dialer{KeepAlive: -1, Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: from[i%len(from)]}}
						var conn net.Conn
						var err error
						for try := 0; try < 4; try++ {
							if conn, err = d.Dial("tcp", addr); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, syscall.ETIMEDOUT) {
								break
							}
							mu.Lock()
							retries++
							mu.Unlock()
						}
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
			r.Open, r.Retries = n, retries
			return dialErr
		},
		"close": closeAll,
	})
}

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

const backlogPath = "/proc/sys/net/core/netdev_max_backlog"

// readBacklog reads net.core.netdev_max_backlog: how many packets each
// CPU's input backlog holds (a veth delivers every packet through it).
func readBacklog() (n int, err error) {
	err = inHostNet(func() error {
		b, err := os.ReadFile(backlogPath)
		if err == nil {
			n, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		return err
	})
	return n, err
}

// setBacklog sets net.core.netdev_max_backlog, for the whole host: it is
// not a per-namespace setting.
func setBacklog(n int) error {
	if err := inHostNet(func() error { return os.WriteFile(backlogPath, []byte(strconv.Itoa(n)), 0o644) }); err != nil {
		return fmt.Errorf("-netdev-max-backlog needs root in the host's namespaces: %w", err)
	}
	return nil
}

// inHostNet runs fn on a thread in the host's network namespace, where the
// host-wide sysctls live: that of the process that entered the lab
// (lab.Enter's parent), as the lab runs in a namespace of its own.
func inHostNet(fn func() error) error {
	host, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", os.Getppid()), unix.O_RDONLY|unix.O_CLOEXEC, 0) // the process that entered the lab
	if err != nil {
		return fmt.Errorf("the host's network namespace: %w", os.NewSyscallError("open", err))
	}
	defer unix.Close(host)
	return netns.Do(host, fn)
}

// reapPlan is how n connections are spread over processes: each server
// process holds share[i], and as many processes as one process's
// descriptor limit requires.
func reapPlan(n int, limit uint64) []int {
	per := int(limit) - fdHeadroom
	procs := (n + per - 1) / per
	share := make([]int, procs)
	for i := range share {
		share[i] = n / procs
		if i < n%procs {
			share[i]++
		}
	}
	return share
}

// reapSetup is how part 4 runs: what its report states besides the
// figures.
type reapSetup struct {
	n           int           // connections in all
	share       []int         // connections each server process holds
	hardLimit   uint64        // this machine's hard RLIMIT_NOFILE
	limit       uint64        // descriptors each process may hold
	budget      time.Duration // the servers' ForBudget
	bound       time.Duration // its worst case, either bound
	backlog     int           // -netdev-max-backlog; 0 leaves the host's
	hostBacklog int           // the host's net.core.netdev_max_backlog
	backlogErr  error         // why hostBacklog could not be read
	srcs        []string      // the clients' source addresses
}

// runReap is part 4: o.reapN connections to gRPC servers whose clients
// all vanish at once, twice over, and the servers seen from outside.
func runReap(o options) (string, error) {
	s := reapSetup{n: o.reapN, budget: o.reapBudget, backlog: o.backlog}
	var err error
	if s.hardLimit, s.limit, err = reapLimits(s.n); err != nil {
		return "", err
	}
	s.share = reapPlan(s.n, s.limit)
	c, err := tuning.ForBudget(o.reapBudget)
	if err != nil {
		return "", err
	}
	restore, err := s.setBacklog()
	if err != nil {
		return "", err
	}
	defer restore()
	// Idle connections, but some of the last frames may still be
	// unacknowledged when the clients vanish: either bound may apply.
	idle, busy := c.Bounds()
	s.bound = max(idle, busy)
	l, err := lab.New()
	if err != nil {
		return "", err
	}
	defer l.Close()
	if s.srcs, err = reapSources(l, s.n); err != nil {
		return "", err
	}
	var r reapers
	defer r.stop()
	if err := r.start(l, s); err != nil {
		return "", err
	}
	base, err := readServers(r.servers)
	if err != nil {
		return "", err
	}
	var cycles [2]reapResult
	for i := range cycles {
		if cycles[i], err = reapCycle(l, r.servers, r.clients, s.share, s.bound); err != nil {
			return "", fmt.Errorf("reap %d: %w", i+1, err)
		}
		if err := l.Restore(lab.Client); err != nil {
			return "", err
		}
	}
	return reapReport(s, base, cycles), nil
}

// reapLimits reads the hard RLIMIT_NOFILE and raises this process's limit
// to hold n connections if it may: then one process of each kind will do.
// Otherwise each holds what the hard limit allows.
func reapLimits(n int) (hard, limit uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	if err := raiseNoFile(uint64(n) + fdHeadroom); err == nil {
		return lim.Max, uint64(n) + fdHeadroom, nil
	} else if lim.Max <= 2*fdHeadroom {
		return 0, 0, err
	}
	return lim.Max, lim.Max, nil
}

// setBacklog reads the host's net.core.netdev_max_backlog and, with
// -netdev-max-backlog, sets it for the part; restore puts it back.
func (s *reapSetup) setBacklog() (restore func(), err error) {
	s.hostBacklog, s.backlogErr = readBacklog() // only needed to set and restore it
	if s.backlog <= 0 {
		return func() {}, nil
	}
	if s.backlogErr != nil {
		return nil, s.backlogErr
	}
	if err := setBacklog(s.backlog); err != nil {
		return nil, err
	}
	fmt.Printf("part 4: net.core.netdev_max_backlog %d for the part (was %d)\n", s.backlog, s.hostBacklog)
	return func() { setBacklog(s.hostBacklog) }, nil
}

// reapSources adds the client addresses n connections need to the lab
// and returns them all: about 28,000 ephemeral ports per address pair,
// 20,000 used per address.
func reapSources(l *lab.Lab, n int) ([]string, error) {
	extra, err := l.AddClientAddrs((n - 1) / 20000)
	if err != nil {
		return nil, err
	}
	var srcs []string
	for _, a := range append([]netip.Addr{l.ClientAddr}, extra...) {
		srcs = append(srcs, a.String())
	}
	return srcs, nil
}

// reapers are part 4's child processes: for each share, a server and the
// client process that dials it.
type reapers struct {
	servers, clients []*child
	started          []*child // in the order started
}

// start starts a server and a client process for each share of s and
// waits until each is ready.
func (r *reapers) start(l *lab.Lab, s reapSetup) error {
	for i, k := range s.share {
		f, addr, err := l.ListenerFile()
		if err != nil {
			return err
		}
		srv, err := startChild(fmt.Sprintf("reap server %d", i+1), []string{"-role", "reap-server", "-reap-budget", s.budget.String(), "-reap", fmt.Sprint(k)}, f)
		f.Close()
		if err != nil {
			return err
		}
		r.started = append(r.started, srv)
		cl, err := startChild(fmt.Sprintf("reap client %d", i+1), []string{"-role", "reap-client", "-addr", addr.String(), "-srcs", strings.Join(s.srcs, ","), "-n", fmt.Sprint(k)})
		if err != nil {
			return err
		}
		r.started = append(r.started, cl)
		for _, ch := range []*child{srv, cl} {
			if _, err := ch.ask("", time.Minute); err != nil {
				return err
			}
		}
		r.servers, r.clients = append(r.servers, srv), append(r.clients, cl)
	}
	return nil
}

// stop stops every process started, the last first.
func (r *reapers) stop() {
	for i := len(r.started) - 1; i >= 0; i-- {
		r.started[i].Stop()
	}
}

// reapReport is part 4's section of the report: how it ran, a table of
// the two reaps and one of the server processes' resources.
func reapReport(s reapSetup, base reading, cycles [2]reapResult) string {
	var b strings.Builder
	s.describe(&b)
	reapTable(&b, s, cycles)
	resourceTable(&b, base, cycles)
	return b.String()
}

// describe writes how the part ran: the processes, the backlog, the fleet.
func (s reapSetup) describe(b *strings.Builder) {
	if len(s.share) > 1 {
		fmt.Fprintf(b, "**%d connections over %d server processes** (and as many client processes): this machine's hard RLIMIT_NOFILE is %d per process and the benchmark may not raise it (raising it needs CAP_SYS_RESOURCE), so each process holds at most %d.\n\n", s.n, len(s.share), s.hardLimit, int(s.limit)-fdHeadroom)
	}
	if s.backlog > 0 {
		fmt.Fprintf(b, "**net.core.netdev_max_backlog set to %d for the part** (the host's is %d): each CPU's input backlog, through which a veth delivers every packet.\n\n", s.backlog, s.hostBacklog)
	} else if s.backlogErr == nil {
		fmt.Fprintf(b, "net.core.netdev_max_backlog as the host has it: %d (each CPU's input backlog, through which a veth delivers every packet).\n\n", s.hostBacklog)
	} else {
		fmt.Fprintf(b, "net.core.netdev_max_backlog could not be read from the lab (%v).\n\n", s.backlogErr)
	}
	fmt.Fprintf(b, "%d gRPC server process(es) (grpcserver.WrapListener and grpcserver.Options with ForBudget(%v): worst case %v, either bound) holding %d connections in all (%v), from %d client addresses, each past the HTTP/2 preface so that the server holds a full transport. Then every client vanishes at once (blackhole routes). Done twice on the same server processes, to tell a leak from memory the runtime keeps for reuse. Figures for the servers are summed over the processes; the time is the last socket of any.\n\n", len(s.share), s.budget, s.bound, s.n, s.share, len(s.srcs))
}

// reapTable writes the table of the two reaps, side by side.
func reapTable(b *strings.Builder, s reapSetup, cycles [2]reapResult) {
	b.WriteString("| | first reap | second reap |\n| --- | ---: | ---: |\n")
	cores := runtime.NumCPU()
	cost := func(r reapResult) time.Duration { // server CPU per connection reaped
		if r.loaded.Open == 0 {
			return 0
		}
		return r.cpu / time.Duration(r.loaded.Open)
	}
	goal := func(r reapResult) time.Duration { // the worst case, plus the reap's own work spread over the cores
		return s.bound + cost(r)*time.Duration(r.loaded.Open)/time.Duration(cores)
	}
	c0, c1 := cycles[0], cycles[1]
	fmt.Fprintf(b, "| last socket gone after | %.2f s | %.2f s |\n", c0.took.Seconds(), c1.took.Seconds())
	fmt.Fprintf(b, "| server CPU per connection reaped | %v | %v |\n", cost(c0).Round(time.Microsecond), cost(c1).Round(time.Microsecond))
	fmt.Fprintf(b, "| goal: worst case (%v) + connections × CPU per connection / %d cores | %.2f s | %.2f s |\n", s.bound, cores, goal(c0).Seconds(), goal(c1).Seconds())
	fmt.Fprintf(b, "| connections the servers held at the vanishing (of %d) | %d | %d |\n", s.n, c0.loaded.Open, c1.loaded.Open)
	fmt.Fprintf(b, "| live connections the servers' kernel cut before the vanishing (TCPAbortOnTimeout) | %d | %d |\n", c0.cutAlive, c1.cutAlive)
	fmt.Fprintf(b, "| connections left open | %d | %d |\n", c0.last.Open, c1.last.Open)
	fmt.Fprintf(b, "| opening them took | %v | %v |\n", c0.filled.Round(time.Second), c1.filled.Round(time.Second))
	fmt.Fprintf(b, "| keepalive probes the servers sent while opening (TCPKeepAlive, retries included) | %d | %d |\n", c0.fill.keepalives, c1.fill.keepalives)
	fmt.Fprintf(b, "| packets dropped arriving at the client host while opening (the servers' probes: each is sent again 500 ms later) | %d | %d |\n", c0.fill.atClient, c1.fill.atClient)
	fmt.Fprintf(b, "| packets dropped arriving at the server host while opening (the clients' answers: each is a lost probe) | %d | %d |\n", c0.fill.atServer, c1.fill.atServer)
	fmt.Fprintf(b, "| per CPU input backlog drops while opening (softnet_stat) | %v | %v |\n", c0.fill.cpu, c1.fill.cpu)
	fmt.Fprintf(b, "| dials tried again (SYN unanswered within 30 s: a loaded server's accept queue full) | %d | %d |\n", c0.retries, c1.retries)
	fmt.Fprintf(b, "| server CPU from the vanishing to the last socket | %.2f s | %.2f s |\n", c0.cpu.Seconds(), c1.cpu.Seconds())
	for i, what := range []string{"sock_diag and verdicts only (-settings=false)", "with every socket's settings read from its process (pidfd_getfd)"} {
		s0, s1 := c0.scans[i], c1.scans[i]
		fmt.Fprintf(b, "| ghostscan before the vanishing, %s: time (connections judged, settings read) | %.2f s (%d, %d) | %.2f s (%d, %d) |\n",
			what, s0.took.Seconds(), s0.conns, s0.read, s1.took.Seconds(), s1.conns, s1.read)
	}
}

// resourceTable writes the server processes' descriptors, goroutines and
// memory before, during and after the reaps.
func resourceTable(b *strings.Builder, base reading, cycles [2]reapResult) {
	b.WriteString("\n| server processes | before connections | holding them | peak while reaping | after the first reap | after the second |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	c0, c1 := cycles[0], cycles[1]
	fmt.Fprintf(b, "| file descriptors | %d | %d | %d | %d | %d |\n", base.fds, c0.loaded.fds, c0.peak.fds, c0.after.fds, c1.after.fds)
	fmt.Fprintf(b, "| goroutines | %d | %d | %d | %d | %d |\n", base.Goroutines, c0.loaded.Goroutines, c0.peak.Goroutines, c0.after.Goroutines, c1.after.Goroutines)
	fmt.Fprintf(b, "| heap in use MiB | %.1f | %.1f | %.1f | %.1f | %.1f |\n", mib(base.HeapBytes), mib(c0.loaded.HeapBytes), mib(c0.peak.HeapBytes), mib(c0.after.HeapBytes), mib(c1.after.HeapBytes))
	fmt.Fprintf(b, "| RSS MiB | %.1f | %.1f | %.1f | %.1f | %.1f |\n", mib(uint64(base.rss)), mib(uint64(c0.loaded.rss)), mib(uint64(c0.peak.rss)), mib(uint64(c0.after.rss)), mib(uint64(c1.after.rss)))
	b.WriteString("\n\"After\" is read once the servers have collected garbage twice and returned free memory to the system. The heap does not fall back to its first baseline because the Go runtime keeps the descriptor of every goroutine it ever ran, for reuse (golang/go#9869): a second reap that does not grow it is the sign of no leak.\n")
}

// readServers reads every server process and sums them; LastEnd is the
// latest of them.
func readServers(servers []*child) (reading, error) {
	var sum reading
	for _, s := range servers {
		r, err := readServer(s)
		if err != nil {
			return reading{}, err
		}
		sum.Open += r.Open
		sum.Goroutines += r.Goroutines
		sum.HeapBytes += r.HeapBytes
		sum.LastEnd = max(sum.LastEnd, r.LastEnd)
		sum.fds += r.fds
		sum.rss += r.rss
		sum.cpu += r.cpu
	}
	return sum, nil
}

// reapResult is one fill-and-vanish cycle, seen from outside the servers.
type reapResult struct {
	loaded, peak, last, after reading
	took, cpu                 time.Duration
	retries                   int   // dials tried again after an unanswered SYN
	cutAlive                  int64 // connections the servers' kernel aborted on timeout before the vanishing
	fill                      drops // where packets were lost from the first dial to the vanishing
	filled                    time.Duration
	scans                     [2]scanResult
}

// scanResult is one ghostscan census of the server host holding the
// connections: without and with reading each socket's settings.
type scanResult struct {
	took    time.Duration
	conns   int // connections judged
	read    int // whose settings were read from their process
	suspect int // suspected at the scan
}

// scanServers takes the census ghostscan takes, on the server host.
func scanServers(l *lab.Lab, settings bool) (scanResult, error) {
	var c *census.Census
	var err error
	l.InServer(func() { c, err = census.Scan(census.Options{Settings: settings}) })
	if err != nil {
		return scanResult{}, err
	}
	r := scanResult{took: time.Duration(c.Took), conns: len(c.Connections)}
	for _, g := range c.Groups {
		r.read += g.SettingsRead
		r.suspect += g.Suspected
	}
	return r, nil
}

// abortsOnTimeout reads the server host's TCPAbortOnTimeout counter:
// connections the kernel ended because their peer went silent.
func abortsOnTimeout(l *lab.Lab) (int64, error) {
	n, err := tcpExt(l, "TCPAbortOnTimeout")
	return n[0], err
}

// tcpExt reads the server host's TcpExt counters of the given names (from
// its thread in the server's network namespace).
func tcpExt(l *lab.Lab, names ...string) ([]int64, error) {
	out := make([]int64, len(names))
	var err error
	l.InServer(func() {
		var b []byte
		if b, err = os.ReadFile("/proc/thread-self/net/netstat"); err != nil {
			return
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i+1 < len(lines); i++ {
			heads, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(heads) == 0 || heads[0] != "TcpExt:" || len(values) != len(heads) {
				continue
			}
			for k, want := range names {
				j := slices.Index(heads, want)
				if j < 0 {
					err = fmt.Errorf("no TcpExt %s in /proc/net/netstat", want)
					return
				}
				if out[k], err = strconv.ParseInt(values[j], 10, 64); err != nil {
					return
				}
			}
			return
		}
		err = fmt.Errorf("no TcpExt in /proc/net/netstat")
	})
	return out, err
}

// drops is where packets were lost, counted by the kernel: on arrival at
// each end of the veth pair (the receiving CPU's input backlog full) and
// in each CPU's backlog (softnet_stat: dropped, and time_squeeze, the
// times its receive work ran out of budget with packets left).
type drops struct {
	atClient, atServer uint64   // dropped arriving: server to client (probes), client to server (answers)
	cpu, squeezed      []uint64 // per CPU
	keepalives         int64    // keepalive probes the server host sent (TCPKeepAlive)
	aborts             int64    // TCPAbortOnTimeout on the server host
}

func readDrops(l *lab.Lab) (drops, error) {
	var d drops
	c, err := l.Counters()
	if err != nil {
		return d, err
	}
	s, err := l.ServerCounters()
	if err != nil {
		return d, err
	}
	d.atClient, d.atServer = c.RxDropped, s.RxDropped
	if d.cpu, d.squeezed, err = softnet(); err != nil {
		return d, err
	}
	n, err := tcpExt(l, "TCPKeepAlive", "TCPAbortOnTimeout")
	d.keepalives, d.aborts = n[0], n[1]
	return d, err
}

func (d drops) sub(e drops) drops {
	r := drops{atClient: d.atClient - e.atClient, atServer: d.atServer - e.atServer,
		keepalives: d.keepalives - e.keepalives, aborts: d.aborts - e.aborts}
	for i := range d.cpu {
		r.cpu = append(r.cpu, d.cpu[i]-e.cpu[i])
		r.squeezed = append(r.squeezed, d.squeezed[i]-e.squeezed[i])
	}
	return r
}

func (d drops) String() string {
	return fmt.Sprintf("dropped arriving at the client host %d, at the server host %d; per CPU backlog dropped %v, squeezed %v; keepalive probes sent %d; aborted on timeout %d",
		d.atClient, d.atServer, d.cpu, d.squeezed, d.keepalives, d.aborts)
}

// softnet reads /proc/net/softnet_stat: per CPU, packets dropped because
// its input backlog was full, and its time squeezes.
func softnet() (dropped, squeezed []uint64, err error) {
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return nil, nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, nil, fmt.Errorf("/proc/net/softnet_stat: %q", line)
		}
		var v [2]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(f[i+1], 16, 64); err != nil {
				return nil, nil, fmt.Errorf("/proc/net/softnet_stat: %w", err)
			}
		}
		dropped, squeezed = append(dropped, v[0]), append(squeezed, v[1])
	}
	return dropped, squeezed, nil
}

// reapCycle has every client process open its share of connections, waits
// until the servers hold them all, makes the clients vanish and follows
// the servers until they hold none.
func reapCycle(l *lab.Lab, servers, clients []*child, share []int, bound time.Duration) (reapResult, error) {
	var r reapResult
	n := 0
	for _, k := range share {
		n += k
	}
	fmt.Printf("part 4: opening %d connections from %d client processes\n", n, len(clients))
	aborts0, err := abortsOnTimeout(l)
	if err != nil {
		return r, err
	}
	drops0, err := readDrops(l)
	if err != nil {
		return r, err
	}
	start := time.Now()
	stopMonitor := monitorFill(l, servers, start, drops0)
	defer stopMonitor()
	if r.retries, err = dialAll(clients); err != nil {
		return r, err
	}
	defer closeClients(clients)
	if r.loaded, err = awaitLoaded(servers, n); err != nil {
		return r, err
	}
	if r.cutAlive, err = abortsOnTimeout(l); err != nil {
		return r, err
	}
	r.cutAlive -= aborts0
	stopMonitor()
	d, err := readDrops(l)
	if err != nil {
		return r, err
	}
	r.fill, r.filled = d.sub(drops0), time.Since(start)
	fmt.Printf("part 4: opened in %v: %v\n", r.filled.Round(time.Second), r.fill)
	if r.scans, err = scanBoth(l); err != nil {
		return r, err
	}
	fmt.Printf("part 4: clients vanish; worst case %v\n", bound)
	if err := l.Vanish(lab.Client); err != nil {
		return r, err
	}
	if err := followReap(&r, servers, bound); err != nil {
		return r, err
	}
	r.after, err = collected(servers)
	return r, err
}

// monitorFill prints, every 10 s while the fleet is opened, where packets
// were lost and how many connections the servers hold; stop ends it and
// may be called more than once.
func monitorFill(l *lab.Lab, servers []*child, start time.Time, drops0 drops) (stop func()) {
	done := make(chan struct{})
	monitored := make(chan struct{})
	go func() {
		defer close(monitored)
		last := drops0
		for t := time.NewTicker(10 * time.Second); ; {
			select {
			case <-done:
				t.Stop()
				return
			case <-t.C:
			}
			d, err := readDrops(l)
			open, _ := readServers(servers)
			if err != nil {
				fmt.Printf("part 4: %v\n", err)
				continue
			}
			fmt.Printf("part 4: %v: open %d; last 10 s: %v\n", time.Since(start).Round(time.Second), open.Open, d.sub(last))
			last = d
		}
	}()
	return sync.OnceFunc(func() { close(done); <-monitored })
}

// dialAll has each client process open its connections, one process at a
// time with 64 dials at once, as one process dialed before: more at once
// overflows the servers' accept queues on two cores, and the kernel drops
// the SYNs. It returns the dials tried again.
func dialAll(clients []*child) (retries int, err error) {
	for _, c := range clients {
		d, err := c.ask("dial", 15*time.Minute)
		if err != nil {
			return retries, fmt.Errorf("dialing: %w", err)
		}
		retries += d.Retries
	}
	return retries, nil
}

// closeClients has each client process close its connections.
func closeClients(clients []*child) {
	for _, c := range clients {
		c.ask("close", time.Minute)
	}
}

// awaitLoaded reads the servers until they hold n connections, or for two
// minutes: a connection the servers lost before the vanishing was cut
// alive, which the caller counts, and the reap goes on with what they hold.
func awaitLoaded(servers []*child, n int) (reading, error) {
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		loaded, err := readServers(servers)
		if err != nil || loaded.Open >= n || time.Now().After(deadline) {
			return loaded, err
		}
	}
}

// scanBoth takes ghostscan's census of the server host twice: without
// and with reading each socket's settings.
func scanBoth(l *lab.Lab) (scans [2]scanResult, err error) {
	for i, settings := range []bool{false, true} {
		if scans[i], err = scanServers(l, settings); err != nil {
			return scans, fmt.Errorf("ghostscan: %w", err)
		}
		fmt.Printf("part 4: ghostscan (settings %v): %d connections in %v\n", settings, scans[i].conns, scans[i].took)
	}
	return scans, nil
}

// followReap reads the servers from the vanishing, just made, until they
// hold no connection or bound and 30 s more have passed, and fills in r's
// peak, last reading, time to the last socket and CPU spent.
func followReap(r *reapResult, servers []*child, bound time.Duration) (err error) {
	vanished := time.Now()
	r.peak = r.loaded
	for deadline := vanished.Add(bound + 30*time.Second); ; time.Sleep(250 * time.Millisecond) {
		if r.last, err = readServers(servers); err != nil {
			return err
		}
		r.peak.rss, r.peak.fds = max(r.peak.rss, r.last.rss), max(r.peak.fds, r.last.fds)
		r.peak.HeapBytes, r.peak.Goroutines = max(r.peak.HeapBytes, r.last.HeapBytes), max(r.peak.Goroutines, r.last.Goroutines)
		if r.last.Open == 0 || time.Now().After(deadline) {
			break
		}
	}
	r.took = time.Unix(0, r.last.LastEnd).Sub(vanished)
	r.cpu = r.last.cpu - r.loaded.cpu
	return nil
}

// collected has every server collect garbage and return free memory to
// the system, then reads them.
func collected(servers []*child) (reading, error) {
	for _, s := range servers {
		if _, err := s.ask("gc", time.Minute); err != nil {
			return reading{}, err
		}
	}
	return readServers(servers)
}
