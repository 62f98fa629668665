//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/ghostsock/ghostsock/integration/lab"
)

// labErr is why this machine cannot run the lab, or nil.
var labErr error

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
