//go:build linux

package integration

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"

	"github.com/ghostsock/ghostsock/integration/lab"
)

// labErr is why this machine cannot run the lab, or nil.
var labErr error

// parallelPerCPU is how many tests run at once per CPU unless -parallel
// says otherwise. A test here builds labs of its own and spends nearly all
// its time waiting on its own sockets' kernel timers, not on the CPU, so
// go test's default of one per CPU would leave the machine idle. Where a
// timing assertion measures this process late, schedLag says by how much.
const parallelPerCPU = 8

func TestMain(m *testing.M) {
	if target := os.Getenv(envStockClient); target != "" {
		stockClient(target) // a stock grpc-go client the proxy test compares with
		return
	}
	if role := os.Getenv(envServerRole); role != "" {
		serverProcess(role) // a server process the fault tests kill
		return
	}
	if err := lab.Enter(); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "FAIL: integration tests must run under CI:", err)
			os.Exit(1)
		}
		labErr = err
	}
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(parallelPerCPU*runtime.GOMAXPROCS(0)))
	}
	schedLag.start()
	os.Exit(m.Run())
}

// newLab builds a lab for one test and removes it when the test ends. It
// skips only when namespaces are refused, and never under CI=true.
func newLab(t *testing.T) *lab.Lab {
	t.Helper()
	if labErr != nil {
		t.Skipf("integration lab unavailable: %v", labErr)
	}
	l, err := lab.New()
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// requireTool returns the path of a real peer program the tests run (from
// Debian package pkg), and fails the test if it is missing: a missing tool
// is no permission error, so it is never a skip. .ci/run installs them.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing (apt-get install -y %s; .ci/run installs it): %v", name, pkg, err)
	}
	return path
}
