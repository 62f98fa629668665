package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/internal/reclaim"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is ghostscan with args, and its exit status: 0 ok, 1 found a
// problem, 2 bad usage or a failure.
func run(args []string, stdout, stderr io.Writer) int {
	f, status, ok := parse(args, stderr)
	switch {
	case !ok:
		return status
	case f.every != 0:
		return watch(f.o, f.every, f.listen, stdout, stderr)
	case f.a.requested():
		return f.a.run(f.o, f.asJSON, stdout, stderr)
	case f.allNetNS:
		return f.takeAllCensus(stdout, stderr)
	}
	return f.takeCensus(stdout, stderr)
}

// flags is what ghostscan's command line asks for.
type flags struct {
	o      census.Options
	peer   string
	conns  bool
	asJSON bool
	limit  time.Duration
	a      action
	every  time.Duration // -watch
	listen string
	// allNetNS: the census of every network namespace of the host;
	// workload, only those a process of that pod or container holds.
	allNetNS bool
	workload string
}

// flagSet declares ghostscan's flags into f, with its usage.
func (f *flags) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ghostscan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ghostscan [-all-netns] [-port N] [-pid N] [-peer CIDR] [-settings=true] [-conns] [-json] [-limit D]")
		fmt.Fprintln(stderr, "       ghostscan -reap [-silent D] [-reap-by HOW] [-yes] [filters]")
		fmt.Fprintln(stderr, "       ghostscan -harden BUDGET [-keepalive-only] [-yes] [-record FILE] -pid N | -port N")
		fmt.Fprintln(stderr, "       ghostscan -undo [-yes] [-record FILE]")
		fmt.Fprintln(stderr, "       ghostscan -watch INTERVAL [-listen ADDR] [filters]")
		fs.PrintDefaults()
	}
	fs.BoolVar(&f.a.reap, "reap", false, "end the connections sending into silence for at least -silent (dry run without -yes)")
	fs.DurationVar(&f.a.silent, "silent", reclaim.DefaultSilent, "-reap: how long a connection must have sent into silence")
	fs.StringVar(&f.a.by, "reap-by", "", "-reap: end connections by `destroy` (SOCK_DESTROY, at once) or user-timeout (a user timeout set through the owning process: at its next retransmission or probe); default destroy, user-timeout where the kernel cannot destroy")
	fs.StringVar(&f.a.harden, "harden", "", "set the options ForBudget(`BUDGET`) chooses on the sockets of -pid or -port, listening ones included (dry run without -yes)")
	fs.BoolVar(&f.a.keepAliveOnly, "keepalive-only", false, "-harden: set keepalive alone, no user timeout (never cuts a live reader; a busy ghost is left to tcp_retries2)")
	fs.BoolVar(&f.a.undo, "undo", false, "put back what -harden replaced, as its record says (dry run without -yes)")
	fs.StringVar(&f.a.record, "record", reclaim.DefaultRecord, "-harden, -undo: the `file` that records what -harden replaced")
	fs.BoolVar(&f.a.yes, "yes", false, "-reap, -harden, -undo: act; without it they change nothing")
	fs.DurationVar(&f.every, "watch", 0, "take a census every `INTERVAL` and serve it as Prometheus metrics on -listen, until SIGINT or SIGTERM")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:9464", "-watch: the `address` of the metrics endpoint (/metrics); :9464 for a scraper on another host")
	fs.IntVar(&f.o.Port, "port", 0, "only sockets with this local or remote `port` (listening ones: local), as ss's sport or dport; for every action too")
	fs.IntVar(&f.o.PID, "pid", 0, "only sockets this process holds, shared with others or not")
	fs.StringVar(&f.peer, "peer", "", "only peers in this `CIDR` (or one address)")
	fs.BoolVar(&f.o.Settings, "settings", true, "read each socket's options from its process (pidfd_getfd; never where it would re-tag the socket's cgroup v1 net_cls or net_prio)")
	fs.BoolVar(&f.conns, "conns", false, "list every connection, not only the census per listener")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON (always with every connection; every duration in milliseconds)")
	fs.DurationVar(&f.limit, "limit", 0, "exit 1 also when a connection may take longer than this to be ended (0: only never)")
	fs.StringVar(&f.workload, "pod", "", "-all-netns: only the namespaces a process of this pod (its `UID`) or container (its ID, or 12 or more of its first digits) holds")
	fs.BoolVar(&f.allNetNS, "all-netns", false, "take the census of every network namespace a process of the host is in, each named with its processes, pods and containers (the census only)")
	return fs
}

// parse reads and checks the command line. Where ghostscan goes no
// further (-h, bad usage) ok is false and status its exit status.
func parse(args []string, stderr io.Writer) (f flags, status int, ok bool) {
	fs := f.flagSet(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, 0, false // -h asked for the usage: not bad usage
		}
		return f, 2, false
	}
	if fs.NArg() > 0 || f.o.Port < 0 || f.o.Port > 65535 || f.o.PID < 0 || f.limit < 0 {
		fs.Usage()
		return f, 2, false
	}
	if f.peer != "" {
		p, err := parsePeer(f.peer)
		if err != nil {
			fmt.Fprintln(stderr, "ghostscan: -peer:", err)
			return f, 2, false
		}
		f.o.Peer = p
	}
	if f.a.harden == "-undo" { // ghostscan -harden -undo
		f.a.harden, f.a.undo = "", true
	}
	if f.a.by != "" && !f.a.reap {
		fmt.Fprintln(stderr, "ghostscan: -reap-by goes with -reap")
		return f, 2, false
	}
	if f.workload != "" && (!f.allNetNS || len(f.workload) < 12) {
		fmt.Fprintln(stderr, "ghostscan: -pod goes with -all-netns, and takes a pod UID or 12 or more digits of a container ID")
		return f, 2, false
	}
	if f.allNetNS && (f.a.requested() || f.every != 0) {
		fmt.Fprintln(stderr, "ghostscan:", errAllNetNSCensusOnly)
		return f, 2, false
	}
	if f.every != 0 && (f.a.requested() || f.conns || f.asJSON || f.limit != 0) {
		fmt.Fprintln(stderr, "ghostscan: -watch takes only the census's filters and -settings")
		return f, 2, false
	}
	return f, 0, true
}

// takeCensus takes one census and prints it, as a table or JSON. Its exit
// status is 1 where a connection is never ended, or may take longer than
// -limit.
func (f *flags) takeCensus(stdout, stderr io.Writer) int {
	c, err := census.Scan(f.o)
	if err != nil {
		fmt.Fprintln(stderr, "ghostscan:", err)
		return 2
	}
	if f.asJSON {
		// Every duration in milliseconds, in fields ending in Ms: see
		// census.Duration.
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(c); err != nil {
			fmt.Fprintln(stderr, "ghostscan:", err)
			return 2
		}
	} else {
		printTable(stdout, c, f.conns)
	}
	if f.exceeds(c) {
		return 1
	}
	return 0
}

func parsePeer(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func printTable(w io.Writer, c *census.Census, conns bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tPROCESS\tESTAB\tCLOSE-WAIT (FOR)\tUNWATCHED\tRETRANSMIT (SILENT)\tSTALLED\tSUSPECT\tNEVER\tMAX-ENDS\tSLOW\tSETTINGS")
	for _, g := range c.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d (%v)\t%d\t%d (%v)\t%d\t%d\t%d\t%v\t%d\t%d/%d read\n", g.Name, orDash(g.Process), g.Established,
			g.CloseWait, g.CloseWaitFor, g.Unwatched, g.Retransmitting, g.SilentFor, g.Stalled, g.Suspected, g.NeverEnds, g.MaxEndsIn,
			g.SlowPath, g.SettingsRead, g.Established+g.CloseWait)
	}
	tw.Flush()
	if c.FinWait2Orphans > 0 {
		fmt.Fprintf(w, "%d closed by this namespace, waiting for their peer's FIN (FIN_WAIT2, no process: the kernel ends them after tcp_fin_timeout)\n", c.FinWait2Orphans)
	}
	if conns {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LOCAL\tPEER\tPROCESS\tSTATE\tVERDICT\tENDS-IN\tRTO\tSILENT\tUNANSWERED\tTRIES\tUNACKED\tNOTSENT\tTIMER\tUT\tKEEPALIVE\tSETTINGS")
		for _, conn := range c.Connections {
			s := conn.Snapshot
			ka := "off"
			if s.Options.KeepAlive.Enable {
				ka = fmt.Sprintf("%v/%v/%d", s.Options.KeepAlive.Idle, s.Options.KeepAlive.Interval, s.Options.KeepAlive.Count)
			}
			rto := census.Duration(s.BaseRTO()).String()
			if conn.SlowPath {
				rto += " slow"
			}
			fmt.Fprintf(tw, "%v\t%v\t%s\t%v\t%v\t%v\t%s\t%v\t%v\t%d\t%d\t%d\t%s\t%v\t%s\t%s\n", conn.Local, conn.Remote, census.Holders(conn.Holders),
				s.State, conn.Verdict, conn.EndsIn, rto, census.Duration(s.Silence()), census.Duration(s.Unanswered()), s.Tries(),
				s.UnackedBytes, s.NotSentBytes, conn.Timer, s.Options.UserTimeout, ka, conn.Settings)
		}
		tw.Flush()
	}
	if c.Settings != "" {
		fmt.Fprintf(w, "options not read: %s\n", c.Settings)
	}
	fmt.Fprintf(w, "%d TCP sockets, %d connections judged, in %v\n", c.Sockets, len(c.Connections), c.Took)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
