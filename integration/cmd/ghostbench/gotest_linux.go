package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// benchstatPkg is the benchstat the report uses, pinned so that its output
// format stays the same.
const benchstatPkg = "golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"

// goBench runs go test benchmarks and returns their raw output, which it
// also keeps in dir for benchstat.
func goBench(dir, name string, count int, benchtime string, pattern string, pkgs ...string) (string, error) {
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchmem", "-count", fmt.Sprint(count)}
	if benchtime != "" {
		args = append(args, "-benchtime", benchtime)
	}
	cmd := exec.Command("go", append(args, pkgs...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	fmt.Printf("go %s\n", strings.Join(cmd.Args[1:], " "))
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go test: %w\n%s", err, out.String())
	}
	return out.String(), os.WriteFile(filepath.Join(dir, name), out.Bytes(), 0o644)
}

// benchstat summarises a file of go test output; col, if set, compares the
// variants of that sub-benchmark key side by side.
func benchstat(dir, name, col string) (string, error) {
	args := []string{"run", benchstatPkg}
	if col != "" {
		args = append(args, "-col", col)
	}
	cmd := exec.Command("go", append(args, name)...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr // go run's download messages
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("benchstat: %w\n%s", err, out)
	}
	return string(out), nil
}

// runGoBenchmarks runs parts 2 and 3 and returns their sections. They run
// before the lab is entered: the lab's namespaces have no route to the
// module proxy that benchstat comes from.
func runGoBenchmarks(o options) (busy, dial string, err error) {
	dir, err := os.MkdirTemp("", "ghostbench")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(dir)
	if o.parts['2'] {
		if _, err := goBench(dir, "grpc.txt", o.count, o.benchtime, ".", "./grpcdial"); err != nil {
			return "", "", err
		}
		if _, err := goBench(dir, "http.txt", o.count, o.benchtime, ".", "./httptransport"); err != nil {
			return "", "", err
		}
		g, err := benchstat(dir, "grpc.txt", "/client")
		if err != nil {
			return "", "", err
		}
		h, err := benchstat(dir, "http.txt", "/transport")
		if err != nil {
			return "", "", err
		}
		busy = fmt.Sprintf("Over loopback, %d runs each, the same server for both clients. `go test ./grpcdial ./httptransport -run '^$' -bench . -benchmem -count %d`, compared with benchstat (`-col /client`, `-col /transport`). A ratio is significant where benchstat prints a p-value below 0.05; `~` means no difference it can see.\n\n```\n%s```\n\n```\n%s```\n", o.count, o.count, g, h)
	}
	if o.parts['3'] {
		if _, err := goBench(dir, "tuning.txt", o.count, o.benchtime, ".", "./tuning"); err != nil {
			return "", "", err
		}
		d, err := benchstat(dir, "tuning.txt", "")
		if err != nil {
			return "", "", err
		}
		dial = fmt.Sprintf("Over loopback. `go test ./tuning -run '^$' -bench . -benchmem -count %d`. `dialer=net` is Go's default dialer (keepalive on: 4 setsockopt calls); `dialer=net-empty-Control` is a dialer with a Control hook that does nothing, which shows what the standard library allocates for any hook; `listener=ghostsock-Listen` sets the options once on the listening socket (Linux copies them to accepted sockets) and guards each accepted connection (the default: one setsockopt for the probe cap and the guard's allocations), `-NoGuard` does not; `WrapListener` sets them per accepted connection and guards; `Apply` is the setsockopt calls alone, with validation; `Write` is 16 KiB writes on an open connection, plain (`conn=net`) and guarded (`conn=ghostsock-Guard`, tuning.Guard: two atomic additions per write, a TCP_INFO read per tick while data is queued); `Sendfile` is io.Copy of a 4 MiB file, as http.ServeContent does, sendfile either way (the guarded one through the guard's ReadFrom).\n\n```\n%s```\n", o.count, d)
	}
	return busy, dial, nil
}
