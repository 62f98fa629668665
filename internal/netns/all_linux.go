package netns

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Holder is a process in a network namespace, with the container and the
// Kubernetes pod its cgroup names, where it names them.
type Holder struct {
	PID       int
	Process   string
	Container string `json:",omitempty"` // the runtime's container ID
	Pod       string `json:",omitempty"` // the pod's UID
}

// Namespace is a network namespace of the host and the processes in it.
type Namespace struct {
	Inode   uint64 // net:[Inode], as /proc/PID/ns/net shows it
	Holders []Holder
}

// All lists every network namespace a process of the host is in, each
// once, by inode, with its processes by PID. A process that is gone, or
// not the caller's to look into, is left out; seeing every namespace of a
// host takes root (CAP_SYS_PTRACE over other users' processes).
func All() ([]Namespace, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	byInode := map[uint64]*Namespace{}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+p.Name()+"/ns/net", &st) != nil {
			continue
		}
		ns := byInode[st.Ino]
		if ns == nil {
			ns = &Namespace{Inode: st.Ino}
			byInode[st.Ino] = ns
		}
		h := Holder{PID: pid, Process: comm(pid)}
		if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil {
			h.Container, h.Pod = Workload(string(cg))
		}
		ns.Holders = append(ns.Holders, h)
	}
	all := make([]Namespace, 0, len(byInode))
	for _, ns := range byInode {
		sort.Slice(ns.Holders, func(i, j int) bool { return ns.Holders[i].PID < ns.Holders[j].PID })
		all = append(all, *ns)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Inode < all[j].Inode })
	return all, nil
}

// comm is the process's name, or "" if it is gone.
func comm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

var (
	// A container's cgroup: its runtime's ID, 64 hex digits, alone
	// (cgroupfs: /docker/ID, /kubepods/.../podUID/ID) or in a systemd
	// scope with the runtime's prefix (docker-, cri-containerd-, crio-,
	// libpod-).
	containerRE = regexp.MustCompile(`^(?:(?:docker|cri-containerd|crio|libpod|containerd)-)?([0-9a-f]{64})(?:\.scope)?$`)
	// A Kubernetes pod's cgroup: pod and its UID (cgroupfs), or a systemd
	// slice kubepods-[QOS-]podUID.slice with the UID's dashes as
	// underscores.
	podRE = regexp.MustCompile(`^(?:kubepods(?:-[a-z]+)?-)?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$`)
)

// Workload is the container ID and the Kubernetes pod UID that a
// /proc/PID/cgroup file names, "" where it names none: cgroup v2's one
// line, or v1's first line whose path names either, with kubelet's
// systemd or cgroupfs layout and the common runtimes' scopes.
func Workload(cgroup string) (container, pod string) {
	for line := range strings.SplitSeq(cgroup, "\n") {
		_, path, ok := cutLast(line)
		if !ok {
			continue
		}
		for el := range strings.SplitSeq(path, "/") {
			if m := containerRE.FindStringSubmatch(el); m != nil {
				container = m[1]
			}
			if m := podRE.FindStringSubmatch(el); m != nil {
				pod = strings.ReplaceAll(m[1], "_", "-")
			}
		}
		if container != "" || pod != "" {
			return container, pod
		}
	}
	return "", ""
}

// cutLast splits a cgroup line "ID:controllers:path" at its second colon.
func cutLast(line string) (head, path string, ok bool) {
	i := strings.Index(line, ":")
	if i < 0 {
		return "", "", false
	}
	j := strings.Index(line[i+1:], ":")
	if j < 0 {
		return "", "", false
	}
	return line[:i+1+j], line[i+2+j:], true
}
