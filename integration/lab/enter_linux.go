package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// envChild marks the re-executed process that runs inside the lab's
// namespaces.
const envChild = "GHOSTSOCK_LAB_CHILD"

// ErrNoNamespaces is wrapped by Enter's error when this machine lets this
// user create no network namespace. Its message says what to run instead.
var ErrNoNamespaces = errors.New("lab: cannot create network namespaces here")

// Enter makes the rest of this program run in a network namespace of its
// own, the lab's client host, so that nothing it sends can leave the
// machine. Call it first thing in main or TestMain.
//
// In the original process Enter re-executes the program (same arguments,
// same standard streams) in a new network namespace, as root, or in a new
// user and network namespace, as a normal user (the equivalent of
// "unshare -Urn"), and exits with its status; it does not return. In the
// re-executed process it returns nil at once. If no namespace can be made
// it returns an error wrapping ErrNoNamespaces, and the caller decides
// whether to skip or fail.
func Enter() error {
	if os.Getenv(envChild) == "1" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envChild+"=1")
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("%w (%v): run as root, or allow user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0, or kernel.apparmor_restrict_unprivileged_userns=0)", ErrNoNamespaces, err)
		}
		return fmt.Errorf("lab: re-exec in namespaces: %w", err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(exit.ExitCode())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return nil
}

// InLab reports whether this process is the re-executed one, inside the
// lab's namespaces.
func InLab() bool { return os.Getenv(envChild) == "1" }
