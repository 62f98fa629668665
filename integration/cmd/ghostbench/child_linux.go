package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ghostsock/ghostsock/integration/fleet"
)

// report is one JSON line from a child process.
type report struct {
	Kind       string `json:"kind"` // ready, stats
	Goroutines int    `json:"goroutines,omitempty"`
	HeapBytes  uint64 `json:"heap,omitempty"`
	Open       int    `json:"open,omitempty"`     // reap server: connections open
	LastEnd    int64  `json:"last_end,omitempty"` // reap server: Unix ns of the last ConnEnd
	Retries    int    `json:"retries,omitempty"`  // reap client: dials tried again
	Requests   int64  `json:"requests,omitempty"` // fleet client under load: RPCs answered
	Failed     int64  `json:"failed,omitempty"`   // fleet client under load: RPCs that failed
	Err        string `json:"err,omitempty"`
}

// child is a process of this program in a role, answering with reports.
type child struct{ *fleet.Proc }

func startChild(name string, args []string, files ...*os.File) (*child, error) {
	p, err := fleet.Start(name, args, files...)
	return &child{p}, err
}

// ask sends cmd (none if empty) and waits for the next report.
func (c *child) ask(cmd string, limit time.Duration) (report, error) {
	if cmd != "" {
		if err := c.Send(cmd); err != nil {
			return report{}, err
		}
	}
	select {
	case line, ok := <-c.Lines:
		if !ok {
			return report{}, fmt.Errorf("%s ended", c.Name)
		}
		var r report
		if err := json.Unmarshal(line, &r); err != nil {
			return report{}, fmt.Errorf("%s: %w: %q", c.Name, err, line)
		}
		if r.Err != "" {
			return r, fmt.Errorf("%s: %s", c.Name, r.Err)
		}
		return r, nil
	case <-time.After(limit):
		return report{}, fmt.Errorf("%s: no answer to %q within %v", c.Name, cmd, limit)
	}
}

// serve is the child side: it answers "stats" with extra(r) filled in,
// "gc" by collecting and returning memory to the system, and ends at
// "quit" or end of input.
func serve(extra func(*report)) { serveWith(extra, nil) }

// serveWith is serve with commands of the role's own: each answers with
// the report it fills in, or with its error.
func serveWith(extra func(*report), cmds map[string]func(*report) error) {
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	send := func(r report) { mu.Lock(); enc.Encode(r); mu.Unlock() }
	send(report{Kind: "ready"})
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "gc":
			// Two collections: sync.Pool keeps a victim cache
			// through one.
			runtime.GC()
			debug.FreeOSMemory()
			send(report{Kind: "gc"})
		case "stats":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			r := report{Kind: "stats", Goroutines: runtime.NumGoroutine(), HeapBytes: ms.HeapInuse}
			if extra != nil {
				extra(&r)
			}
			send(r)
		case "quit":
			return
		default:
			if cmd, ok := cmds[in.Text()]; ok {
				r := report{Kind: in.Text()}
				if err := cmd(&r); err != nil {
					r.Err = err.Error()
				}
				send(r)
			}
		}
	}
}

// fail reports a child's setup error to the parent and exits.
func fail(err error) {
	json.NewEncoder(os.Stdout).Encode(report{Kind: "error", Err: err.Error()})
	os.Exit(1)
}
