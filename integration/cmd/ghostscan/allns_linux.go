package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/internal/netns"
	"github.com/ghostsock/ghostsock/tuning"
)

// nsCensus is the census of one network namespace of the host, with the
// processes that hold it (and their containers and pods).
type nsCensus struct {
	NetNS   uint64
	Holders []netns.Holder
	Census  *census.Census `json:",omitempty"`
	Error   string         `json:",omitempty"` // why it has no census
}

// takeAllCensus takes the census of every network namespace a process of
// the host is in, each entered on a locked thread (netns.Do), and prints
// those with a connection or listener the filters pick (all of them with
// -json). Its exit status is takeCensus's over all of them; 2 if no
// namespace could be censused.
func (f *flags) takeAllCensus(stdout, stderr io.Writer) int {
	all, err := netns.All()
	if err != nil {
		fmt.Fprintln(stderr, "ghostscan:", err)
		return 2
	}
	var done []nsCensus
	failed := 0
	for _, ns := range all {
		if f.workload != "" && !runs(ns, f.workload) {
			continue
		}
		r := nsCensus{NetNS: ns.Inode, Holders: ns.Holders}
		if r.Census, err = scanIn(ns, f.o); err != nil {
			r.Error = err.Error()
			failed++
			fmt.Fprintf(stderr, "ghostscan: net:[%d]: %v\n", ns.Inode, err)
		}
		done = append(done, r)
	}
	switch {
	case len(done) == 0:
		fmt.Fprintf(stderr, "ghostscan: -pod %s: no namespace holds that pod or container\n", f.workload)
		return 2
	case failed == len(done):
		return 2
	}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct{ Namespaces []nsCensus }{done}); err != nil {
			fmt.Fprintln(stderr, "ghostscan:", err)
			return 2
		}
	} else {
		for _, r := range done {
			if r.Census != nil && (len(r.Census.Groups) > 0 || len(r.Census.Listeners) > 0) {
				fmt.Fprintf(stdout, "net:[%d] %s\n", r.NetNS, heldBy(r.Holders))
				printTable(stdout, r.Census, f.conns)
				fmt.Fprintln(stdout)
			}
		}
	}
	status := 0
	for _, r := range done {
		if r.Census != nil && f.exceeds(r.Census) {
			status = 1
		}
	}
	return status
}

// exceeds reports a connection of c that is never ended, or may take
// longer than -limit.
func (f *flags) exceeds(c *census.Census) bool {
	for _, conn := range c.Connections {
		if e := time.Duration(conn.EndsIn); e == tuning.Never || f.limit > 0 && e > f.limit {
			return true
		}
	}
	return false
}

// scanIn takes o's census in ns, entered through the first of its
// processes whose namespace can still be opened and is still ns.
func scanIn(ns netns.Namespace, o census.Options) (*census.Census, error) {
	for _, h := range ns.Holders {
		fd, ok := netns.OfProcess(h.PID, ns.Inode)
		if !ok {
			continue // gone, not ours to enter, or its PID reused meanwhile
		}
		var c *census.Census
		err := netns.Do(fd, func() (err error) {
			c, err = census.Scan(o)
			return err
		})
		unix.Close(fd)
		return c, err
	}
	return nil, fmt.Errorf("no process of the namespace could be entered: %w", os.ErrNotExist)
}

// runs reports whether a process of ns belongs to the pod with UID id, or
// to the container whose ID is or starts with id.
func runs(ns netns.Namespace, id string) bool {
	for _, h := range ns.Holders {
		if h.Pod == id || h.Container != "" && strings.HasPrefix(h.Container, id) {
			return true
		}
	}
	return false
}

// heldBy names a namespace's holders: the first process, with its pod and
// container where its cgroup names them, and how many more there are.
func heldBy(hs []netns.Holder) string {
	if len(hs) == 0 {
		return "(no process)"
	}
	h := hs[0]
	parts := []string{fmt.Sprintf("%s[%d]", h.Process, h.PID)}
	if h.Pod != "" {
		parts = append(parts, "pod "+h.Pod)
	}
	if h.Container != "" {
		parts = append(parts, "container "+h.Container[:min(12, len(h.Container))])
	}
	if len(hs) > 1 {
		parts = append(parts, fmt.Sprintf("and %d more", len(hs)-1))
	}
	return strings.Join(parts, ", ")
}

var errAllNetNSCensusOnly = errors.New("-all-netns takes the census only, for now: run -reap, -harden, -undo and -watch in each namespace (nsenter -n -t PID)")
