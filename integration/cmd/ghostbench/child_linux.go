package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// report is one JSON line from a child process.
type report struct {
	Kind       string `json:"kind"` // ready, stats
	Goroutines int    `json:"goroutines,omitempty"`
	HeapBytes  uint64 `json:"heap,omitempty"`
	Open       int    `json:"open,omitempty"`     // reap server: connections open
	LastEnd    int64  `json:"last_end,omitempty"` // reap server: Unix ns of the last ConnEnd
	Err        string `json:"err,omitempty"`
}

// child is a process of this program in a role, driven by lines on its
// stdin and answering with reports on its stdout.
type child struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  chan report
}

func startChild(name string, args []string, files ...*os.File) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, in: in, out: make(chan report, 1)}
	go func() {
		defer close(c.out)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			var r report
			if json.Unmarshal(s.Bytes(), &r) == nil {
				c.out <- r
			}
		}
	}()
	return c, nil
}

// ask sends cmd (none if empty) and waits for the next report.
func (c *child) ask(cmd string, limit time.Duration) (report, error) {
	if cmd != "" {
		if _, err := fmt.Fprintln(c.in, cmd); err != nil {
			return report{}, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	select {
	case r, ok := <-c.out:
		if !ok {
			return report{}, fmt.Errorf("%s ended", c.name)
		}
		if r.Err != "" {
			return r, fmt.Errorf("%s: %s", c.name, r.Err)
		}
		return r, nil
	case <-time.After(limit):
		return report{}, fmt.Errorf("%s: no answer to %q within %v", c.name, cmd, limit)
	}
}

func (c *child) stop() {
	fmt.Fprintln(c.in, "quit")
	c.in.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// serve is the child side: it answers "stats" with extra(r) filled in,
// "gc" by collecting and returning memory to the system, and ends at
// "quit" or end of input.
func serve(extra func(*report)) {
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
		}
	}
}

// fail reports a child's setup error to the parent and exits.
func fail(err error) {
	json.NewEncoder(os.Stdout).Encode(report{Kind: "error", Err: err.Error()})
	os.Exit(1)
}
