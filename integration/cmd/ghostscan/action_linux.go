package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/internal/reclaim"
	"github.com/ghostsock/ghostsock/tuning"
)

// action is what ghostscan does beyond a census: -reap, -harden, -undo.
type action struct {
	reap          bool
	silent        time.Duration
	by            string // -reap-by
	harden        string
	keepAliveOnly bool
	undo          bool
	record        string
	yes           bool
}

func (a action) requested() bool { return a.reap || a.harden != "" || a.undo }

// run does the one action asked for. Exit status: 0 when it is done, or a
// dry run found nothing to do; 1 when something is left that needs an
// operator (a dry run that found ghosts to end or sockets to change, a
// ghost or socket it could not end or set); 2 for bad usage, a refusal or
// a failure, with nothing changed.
func (a action) run(o census.Options, asJSON bool, stdout, stderr io.Writer) int {
	n := 0
	for _, on := range []bool{a.reap, a.harden != "", a.undo} {
		if on {
			n++
		}
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "ghostscan:", err); return 2 }
	switch {
	case n > 1:
		return fail(errors.New("-reap, -harden and -undo are one at a time"))
	case a.reap && a.silent <= 0:
		return fail(fmt.Errorf("-silent %v: must be positive", a.silent))
	case a.by != "" && (!a.reap || a.by != string(reclaim.ByDestroy) && a.by != string(reclaim.ByUserTimeout)):
		return fail(fmt.Errorf("-reap-by %q: with -reap, %s or %s", a.by, reclaim.ByDestroy, reclaim.ByUserTimeout))
	case a.undo && (o.Port != 0 || o.PID != 0 || o.Peer.IsValid()):
		return fail(errors.New("-undo takes no filter: it puts back every socket its record names"))
	}
	switch {
	case a.reap:
		rs, err := reclaim.ReapBy(o, a.silent, a.yes, reclaim.By(a.by))
		if err != nil {
			return fail(err)
		}
		if asJSON {
			return encode(stdout, stderr, rs, reapStatus(rs))
		}
		printReap(stdout, rs, a)
		return reapStatus(rs)
	case a.harden != "":
		budget, err := time.ParseDuration(a.harden)
		if err != nil {
			return fail(fmt.Errorf("-harden %q: a budget is a duration, as tuning.ForBudget takes (10s, 2m): %w", a.harden, err))
		}
		show := func(p *reclaim.Plan) {
			if !asJSON {
				printPlan(stdout, p, a) // the warning comes before anything is set
			}
		}
		p, err := reclaim.Harden(o, budget, a.keepAliveOnly, a.record, a.yes, show)
		if err != nil {
			return fail(err) // the record is written first: nothing was set
		}
		if asJSON {
			return encode(stdout, stderr, p, changeStatus(p.Changes, a.yes))
		}
		printChanges(stdout, p.Changes)
		return changeStatus(p.Changes, a.yes)
	default:
		chs, err := reclaim.Undo(a.record, a.yes)
		if err != nil && len(chs) == 0 {
			return fail(err)
		}
		if err != nil {
			// The sockets were put back; the record could not be
			// rewritten. Say what was done, and that something is left.
			fmt.Fprintf(stdout, "undo, from %s:\n", a.record)
			printChanges(stdout, chs)
			fmt.Fprintln(stderr, "ghostscan:", err)
			return 1
		}
		if asJSON {
			return encode(stdout, stderr, chs, changeStatus(chs, a.yes))
		}
		fmt.Fprintf(stdout, "undo, from %s%s:\n", a.record, dry(a.yes))
		printChanges(stdout, chs)
		return changeStatus(chs, a.yes)
	}
}

func dry(yes bool) string {
	if yes {
		return ""
	}
	return " (dry run: nothing changed; -yes acts)"
}

func encode(stdout, stderr io.Writer, v any, code int) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(stderr, "ghostscan:", err)
		return 2
	}
	return code
}

// reapStatus is 1 while a dead connection is left: found by a dry run, or
// not ended.
func reapStatus(rs []*reclaim.Reaped) int {
	for _, r := range rs {
		if r.Outcome == reclaim.WouldEnd || r.Outcome == reclaim.Failed {
			return 1
		}
	}
	return 0
}

// changeStatus is 1 while a socket is left to change: in a dry run, any;
// otherwise one that failed.
func changeStatus(chs []*reclaim.Change, yes bool) int {
	for _, ch := range chs {
		if !yes && ch.Pending() || ch.Failed() {
			return 1
		}
	}
	return 0
}

func printReap(w io.Writer, rs []*reclaim.Reaped, a action) {
	fmt.Fprintf(w, "%s sending into silence for at least %v (retransmitted or probed twice or more, unanswered)%s\n", count(len(rs), "connection"), a.silent, dry(a.yes))
	if len(rs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LOCAL\tPEER\tPROCESS\tUNANSWERED\tSILENT\tUNACKED\tRETRANS\tPROBES\tTIMER\tRESULT")
	for _, r := range rs {
		c, s := r.Conn, r.Conn.Snapshot
		res := string(r.Outcome)
		if r.By != "" {
			res += " (" + string(r.By) + ")"
		}
		if r.Err != "" {
			res += ": " + r.Err
		}
		fmt.Fprintf(tw, "%v\t%v\t%s\t%v\t%v\t%d\t%d\t%d\t%s\t%s\n", c.Local, c.Remote, census.Holders(c.Holders),
			census.Duration(s.Unanswered()), census.Duration(s.Silence()), s.UnackedBytes, s.Retransmits, s.Probes, c.Timer, res)
	}
	tw.Flush()
}

func printPlan(w io.Writer, p *reclaim.Plan, a action) {
	what := fmt.Sprintf("user timeout %v and keepalive %s", p.Config.UserTimeout, keepAlive(p.Config))
	bounds := fmt.Sprintf("a peer that vanishes from now on is found within %v idle, %v busy", p.IdleBound, p.BusyBound)
	if p.KeepAliveOnly {
		what = "keepalive " + keepAlive(p.Config) + " alone"
		bounds = fmt.Sprintf("an idle peer that vanishes from now on is found within %v; a busy one is left to the process's own user timeout, or tcp_retries2", p.IdleBound)
	}
	todo := 0
	for _, ch := range p.Changes {
		if ch.Pending() {
			todo++
		}
	}
	fmt.Fprintf(w, "harden %v: %s on %s (%s)%s\n", p.Budget, what, count(todo, "socket"), bounds, dry(a.yes))
	if n := len(p.Changes) - todo; n > 0 {
		fmt.Fprintf(w, "%s already set so, left out of the record\n", count(n, "socket"))
	}
	if p.Stalled > 0 {
		if p.KeepAliveOnly {
			fmt.Fprintf(w, "%s window-stalled now: -keepalive-only leaves them alone\n", count(p.Stalled, "connection"))
		} else {
			fmt.Fprintf(w, "warning: %s window-stalled now: a live reader that keeps its window shut for %v is cut by the user timeout (the window guard runs only inside a process built with ghostsock); -keepalive-only never cuts one\n", count(p.Stalled, "connection"), p.Config.UserTimeout)
		}
	}
	if p.Unowned > 0 {
		fmt.Fprintf(w, "%s that no process is seen to hold (not yet accepted) left alone\n", count(p.Unowned, "socket"))
	}
	if p.Gone > 0 {
		fmt.Fprintf(w, "%s closed since the census, left\n", count(p.Gone, "socket"))
	}
	if a.yes && todo > 0 {
		fmt.Fprintf(w, "recording in %s: ghostscan -undo -yes puts back what is replaced\n", a.record)
	}
}

func printChanges(w io.Writer, chs []*reclaim.Change) {
	if len(chs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tLOCAL\tPEER\tPROCESS\tVERDICT\tBEFORE\tAFTER\tRESULT")
	for _, ch := range chs {
		peer := "-"
		if ch.Remote != nil {
			peer = ch.Remote.String()
		}
		verdict := "-"
		if ch.Kind != reclaim.Listening {
			verdict = ch.Verdict.String()
		}
		before, after := options(ch.Before.Config()), options(ch.After.Config())
		if ch.Gone() {
			before, after = "-", "-" // nothing was read, nothing changed
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%s\t%s\t%s\n", ch.Kind, ch.Local, peer, holders(ch), verdict, before, after, ch.Outcome)
	}
	tw.Flush()
}

// holders names every process recorded as holding ch's socket, as
// census.Holders does.
func holders(ch *reclaim.Change) string {
	if len(ch.Holders) == 0 {
		if ch.PID == 0 {
			return "-"
		}
		return fmt.Sprintf("%s[%d]:%d", ch.Process, ch.PID, ch.FD)
	}
	hs := make(census.Holders, len(ch.Holders))
	for i, h := range ch.Holders {
		hs[i] = h.Holder
	}
	return hs.String()
}

// options is a socket's user timeout and keepalive, as ss -o would want
// them: "ut 7.8s ka 3s/1s/3" or "ut 0s ka off".
func options(c tuning.Config) string {
	return fmt.Sprintf("ut %v ka %s", c.UserTimeout, keepAlive(c))
}

func keepAlive(c tuning.Config) string {
	if !c.KeepAlive.Enable {
		return "off"
	}
	return fmt.Sprintf("%v/%v/%d", c.KeepAlive.Idle, c.KeepAlive.Interval, c.KeepAlive.Count)
}

// count is "1 connection" or "2 connections".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
