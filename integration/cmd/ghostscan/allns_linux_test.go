package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ghostsock/ghostsock/internal/netns"
)

// envNetNSChild makes the test binary the child of TestAllNetNS: in a
// network namespace of its own, it holds a loopback connection open and
// prints its listener's port.
const envNetNSChild = "GHOSTSCAN_NETNS_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envNetNSChild) != "" {
		netnsChild()
		return
	}
	os.Exit(m.Run())
}

// netnsChild brings lo up, connects to itself on it, prints the port and
// waits for its stdin to close.
func netnsChild() {
	fail := func(err error) { fmt.Println("error:", err); os.Exit(1) }
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fail(err)
	}
	ifr, err := unix.NewIfreq("lo")
	if err == nil {
		err = unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr)
	}
	if err == nil {
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		err = unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
	}
	if err != nil {
		fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fail(err)
	}
	server, err := ln.Accept()
	if err != nil {
		fail(err)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	bufio.NewReader(os.Stdin).ReadString('\n') // until the test ends
	client.Close()
	server.Close()
}

// -all-netns finds a connection in a network namespace this process is
// not in, names the namespace with the process that holds it, and judges
// it as ghostscan in that namespace would.
func TestAllNetNS(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envNetNSChild+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) && os.Getenv("CI") != "true" {
			t.Skipf("no new network namespace without CAP_SYS_ADMIN (run as root): %v", err)
		}
		require.NoError(t, err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	port, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err, "the child: %s", line)

	var out, errOut bytes.Buffer
	code := run([]string{"-all-netns", "-json", "-port", strconv.Itoa(port)}, &out, &errOut)
	assert.Equal(t, 0, code, "Go turns keepalive on: every connection ends (%s)", errOut.String())
	var got struct{ Namespaces []nsCensus }
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	var ns *nsCensus
	for i, n := range got.Namespaces {
		for _, h := range n.Holders {
			if h.PID == cmd.Process.Pid {
				ns = &got.Namespaces[i]
			}
		}
	}
	require.NotNil(t, ns, "the child's namespace is listed")
	require.NotNil(t, ns.Census, ns.Error)
	assert.Len(t, ns.Census.Connections, 2, "both ends, in the child's namespace")
	assert.Equal(t, ns.NetNS, ns.Census.NetNS, "the census was taken there")
	require.Len(t, ns.Census.Groups, 2, "the listener's and the dialer's")
	for _, g := range ns.Census.Groups {
		assert.Equal(t, 1, g.Established, g.Name)
	}

	out.Reset()
	run([]string{"-all-netns", "-port", strconv.Itoa(port)}, &out, &errOut)
	assert.Contains(t, out.String(), fmt.Sprintf("net:[%d] ", ns.NetNS))
	assert.Contains(t, out.String(), fmt.Sprintf("[%d]", cmd.Process.Pid), "named with its process")
}

// -pod picks the namespaces a process of a pod, or of a container, holds.
func TestRunsPod(t *testing.T) {
	const id = "3f1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
	const uid = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
	ns := netns.Namespace{Holders: []netns.Holder{{PID: 1, Process: "pause", Pod: uid}, {PID: 2, Process: "app", Pod: uid, Container: id}}}
	assert.True(t, runs(ns, uid), "the pod's UID")
	assert.True(t, runs(ns, id), "a container's ID")
	assert.True(t, runs(ns, id[:12]), "its short form, as crictl ps prints it")
	assert.False(t, runs(ns, "0a1b2c3d-4e5f-6a7b-8c9d-000000000000"), "another pod")
	assert.False(t, runs(netns.Namespace{Holders: []netns.Holder{{PID: 3, Process: "sshd"}}}, id[:12]), "the host's")
	var out, errOut bytes.Buffer
	assert.Equal(t, 2, run([]string{"-all-netns", "-pod", uid}, &out, &errOut), "no namespace here holds it")
	assert.Contains(t, errOut.String(), "no namespace holds that pod")
}
