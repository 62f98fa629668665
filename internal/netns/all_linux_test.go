package netns

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWorkload(t *testing.T) {
	const id = "3f1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
	const uid = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
	underscored := strings.ReplaceAll(uid, "-", "_")
	for _, tc := range []struct {
		name, cgroup   string
		container, pod string
	}{
		{"kubelet, systemd driver, containerd", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + underscored + ".slice/cri-containerd-" + id + ".scope\n", id, uid},
		{"kubelet, systemd driver, guaranteed, CRI-O", "0::/kubepods.slice/kubepods-pod" + underscored + ".slice/crio-" + id + ".scope\n", id, uid},
		{"kubelet, cgroupfs driver", "0::/kubepods/besteffort/pod" + uid + "/" + id + "\n", id, uid},
		{"a pod's own cgroup, no container", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + underscored + ".slice\n", "", uid},
		{"docker, systemd", "0::/system.slice/docker-" + id + ".scope\n", id, ""},
		{"docker, cgroupfs, cgroup v1", "12:pids:/docker/" + id + "\n11:memory:/docker/" + id + "\n", id, ""},
		{"podman", "0::/machine.slice/libpod-" + id + ".scope/container\n", id, ""},
		{"a host service", "0::/system.slice/ssh.service\n", "", ""},
		{"a user session", "0::/user.slice/user-1000.slice/session-3.scope\n", "", ""},
		{"empty", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := Workload(tc.cgroup)
			assert.Equal(t, tc.container, c)
			assert.Equal(t, tc.pod, p)
		})
	}
}

// All finds a process that lives in a network namespace of its own, once,
// with its name, beside this process's namespace.
func TestAll(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) && os.Getenv("CI") != "true" {
			t.Skipf("no new network namespace without CAP_SYS_ADMIN (run as root): %v", err)
		}
		require.NoError(t, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var st syscall.Stat_t
	require.Eventually(t, func() bool {
		return syscall.Stat("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/ns/net", &st) == nil
	}, 5*time.Second, 10*time.Millisecond)

	all, err := All()
	require.NoError(t, err)
	seen := map[uint64]int{}
	var found *Namespace
	for i, ns := range all {
		seen[ns.Inode]++
		if ns.Inode == st.Ino {
			found = &all[i]
		}
	}
	for ino, n := range seen {
		assert.Equal(t, 1, n, "net:[%d] listed once", ino)
	}
	assert.Contains(t, seen, own(t), "this process's namespace")
	require.NotNil(t, found, "the child's namespace")
	require.Len(t, found.Holders, 1, "the child alone is in it")
	assert.Equal(t, cmd.Process.Pid, found.Holders[0].PID)
	assert.Equal(t, "sleep", found.Holders[0].Process)
}
