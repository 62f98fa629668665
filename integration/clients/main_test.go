//go:build linux

package clients

import (
	"fmt"
	"os"
	"testing"

	"github.com/ghostsock/ghostsock/integration/lab"
)

// labErr is why this machine cannot run the lab, or nil.
var labErr error

func TestMain(m *testing.M) {
	if err := lab.Enter(); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "FAIL: the client suite must run under CI:", err)
			os.Exit(1)
		}
		labErr = err
	}
	os.Exit(m.Run())
}

// newLab builds a lab for one test and removes it when the test ends. It
// skips only when namespaces are refused, and never under CI=true.
func newLab(t *testing.T) *lab.Lab {
	t.Helper()
	if labErr != nil {
		t.Skipf("the lab is unavailable (run as root, or where user namespaces are allowed): %v", labErr)
	}
	l, err := lab.New()
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// newPathLab is newLab with a Path's link between the hosts (lab.NewPath):
// delay, loss, blackouts.
func newPathLab(t *testing.T, path lab.Path) *lab.Lab {
	t.Helper()
	if labErr != nil {
		t.Skipf("the lab is unavailable (run as root, or where user namespaces are allowed): %v", labErr)
	}
	l, err := lab.NewPath(path)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
