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
	"github.com/ghostsock/ghostsock/tuning"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ghostscan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ghostscan [-port N] [-pid N] [-peer CIDR] [-settings=true] [-conns] [-json] [-limit D]")
		fmt.Fprintln(stderr, "       ghostscan -reap [-silent D] [-yes] [filters]")
		fmt.Fprintln(stderr, "       ghostscan -harden BUDGET [-keepalive-only] [-yes] [-record FILE] -pid N | -port N")
		fmt.Fprintln(stderr, "       ghostscan -undo [-yes] [-record FILE]")
		fmt.Fprintln(stderr, "       ghostscan -watch INTERVAL [-listen ADDR] [filters]")
		fs.PrintDefaults()
	}
	var o census.Options
	var peer string
	var conns, asJSON bool
	var limit time.Duration
	var a action
	fs.BoolVar(&a.reap, "reap", false, "end the connections sending into silence for at least -silent (dry run without -yes)")
	fs.DurationVar(&a.silent, "silent", reclaim.DefaultSilent, "-reap: how long a connection must have sent into silence")
	fs.StringVar(&a.harden, "harden", "", "set the options ForBudget(`BUDGET`) chooses on the sockets of -pid or -port, listening ones included (dry run without -yes)")
	fs.BoolVar(&a.keepAliveOnly, "keepalive-only", false, "-harden: set keepalive alone, no user timeout (never cuts a live reader; a busy ghost is left to tcp_retries2)")
	fs.BoolVar(&a.undo, "undo", false, "put back what -harden replaced, as its record says (dry run without -yes)")
	fs.StringVar(&a.record, "record", reclaim.DefaultRecord, "-harden, -undo: the `file` that records what -harden replaced")
	fs.BoolVar(&a.yes, "yes", false, "-reap, -harden, -undo: act; without it they change nothing")
	var every time.Duration
	var listen string
	fs.DurationVar(&every, "watch", 0, "take a census every `INTERVAL` and serve it as Prometheus metrics on -listen, until SIGINT or SIGTERM")
	fs.StringVar(&listen, "listen", "127.0.0.1:9464", "-watch: the `address` of the metrics endpoint (/metrics); :9464 for a scraper on another host")
	fs.IntVar(&o.Port, "port", 0, "only sockets with this local or remote `port` (listening ones: local), as ss's sport or dport; for every action too")
	fs.IntVar(&o.PID, "pid", 0, "only sockets this process holds, shared with others or not")
	fs.StringVar(&peer, "peer", "", "only peers in this `CIDR` (or one address)")
	fs.BoolVar(&o.Settings, "settings", true, "read each socket's options from its process (pidfd_getfd; never where it would re-tag the socket's cgroup v1 net_cls or net_prio)")
	fs.BoolVar(&conns, "conns", false, "list every connection, not only the census per listener")
	fs.BoolVar(&asJSON, "json", false, "print JSON (always with every connection; every duration in milliseconds)")
	fs.DurationVar(&limit, "limit", 0, "exit 1 also when a connection may take longer than this to be ended (0: only never)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h asked for the usage: not bad usage
		}
		return 2
	}
	if fs.NArg() > 0 || o.Port < 0 || o.Port > 65535 || o.PID < 0 || limit < 0 {
		fs.Usage()
		return 2
	}
	if peer != "" {
		p, err := parsePeer(peer)
		if err != nil {
			fmt.Fprintln(stderr, "ghostscan: -peer:", err)
			return 2
		}
		o.Peer = p
	}
	if a.harden == "-undo" { // ghostscan -harden -undo
		a.harden, a.undo = "", true
	}
	switch {
	case every != 0 && (a.requested() || conns || asJSON || limit != 0):
		fmt.Fprintln(stderr, "ghostscan: -watch takes only the census's filters and -settings")
		return 2
	case every != 0:
		return watch(o, every, listen, stdout, stderr)
	case a.requested():
		return a.run(o, asJSON, stdout, stderr)
	}
	c, err := census.Scan(o)
	if err != nil {
		fmt.Fprintln(stderr, "ghostscan:", err)
		return 2
	}
	if asJSON {
		// Every duration in milliseconds, in fields ending in Ms: see
		// census.Duration.
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(c); err != nil {
			fmt.Fprintln(stderr, "ghostscan:", err)
			return 2
		}
	} else {
		printTable(stdout, c, conns)
	}
	for _, conn := range c.Connections {
		if e := time.Duration(conn.EndsIn); e == tuning.Never || limit > 0 && e > limit {
			return 1
		}
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
	fmt.Fprintln(tw, "GROUP\tPROCESS\tESTAB\tUNWATCHED\tRETRANSMIT (SILENT)\tSTALLED\tSUSPECT\tNEVER\tMAX-ENDS\tSLOW\tSETTINGS")
	for _, g := range c.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d (%v)\t%d\t%d\t%d\t%v\t%d\t%d/%d read\n", g.Name, orDash(g.Process), g.Established,
			g.Unwatched, g.Retransmitting, g.SilentFor, g.Stalled, g.Suspected, g.NeverEnds, g.MaxEndsIn, g.SlowPath, g.SettingsRead, g.Established)
	}
	tw.Flush()
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
