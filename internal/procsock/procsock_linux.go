// Package procsock reaches the sockets of other processes: a duplicate of
// a process's descriptor, taken with pidfd_getfd (Linux 5.6+), shares the
// socket, so an option read on it is the process's and an option set on it
// is set for the process. It is the one way ghostscan touches another
// process's socket, for reading (the census) and for setting (-harden).
//
// pidfd_getfd needs ptrace rights over the process
// (PTRACE_MODE_ATTACH_REALCREDS): root, or CAP_SYS_PTRACE, or the same
// user where kernel.yama.ptrace_scope allows it.
//
// It is not free of side effects: the kernel re-tags a socket it hands
// over with the caller's net_cls class id and net_prio index
// (__receive_sock), which a host using either cgroup v1 controller routes
// and shapes by. Where either is in use (Retags), Do duplicates nothing
// and returns ErrRetags; elsewhere both are the same for every process,
// and the duplicate changes nothing.
package procsock

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrPermission is wrapped by the errors of a process whose descriptors
// this process may not take; it also matches fs.ErrPermission.
var ErrPermission = errors.New("procsock: no ptrace rights over the process (run as root, or with CAP_SYS_PTRACE)")

// ErrNoProcess is wrapped by the errors of a process that does not exist
// (or has exited, or is another process that took its pid since).
var ErrNoProcess = errors.New("procsock: no such process")

// ErrChanged is wrapped by Socket's error when the descriptor no longer
// holds the socket asked for: closed, or another socket took its number.
var ErrChanged = errors.New("procsock: the descriptor no longer holds that socket")

// ErrRetags is wrapped by Do's error where a duplicate would change the
// socket's cgroup tags (see Retags): nothing was duplicated.
var ErrRetags = errors.New("procsock: pidfd_getfd would re-tag the socket with this process's net_cls class id and net_prio index (cgroup v1 net_cls or net_prio is in use), so no socket of another process is read or changed")

// Retags reports whether a duplicate taken with pidfd_getfd could change
// the socket it shares: whether cgroup v1's net_cls or net_prio has a
// hierarchy with cgroups beside its root (/proc/cgroups: a hierarchy
// other than 0, more than one cgroup), the only way one process's class
// id or priority index can differ from another's. A hierarchy with its
// root alone, as one unmounted lingers, tags every process alike.
// Controllers not built into the kernel count as unused.
func Retags() (bool, error) {
	b, err := os.ReadFile("/proc/cgroups")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // no cgroup v1 at all
	}
	if err != nil {
		return false, fmt.Errorf("procsock: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line) // subsys_name hierarchy num_cgroups enabled
		if len(f) >= 3 && (f[0] == "net_cls" || f[0] == "net_prio") && f[1] != "0" && f[2] != "1" {
			return true, nil
		}
	}
	return false, nil
}

// Procs holds a pidfd per process it has been asked for. Its zero value
// is not usable: make one with New, and Close it.
type Procs struct {
	pidfds  map[int]int
	errs    map[int]error
	started map[int]uint64 // start times Socket has checked, by pid
	retags  error          // ErrRetags, or why Retags could not tell, for every process
}

// New returns an empty Procs, which duplicates nothing if Retags says a
// duplicate would change the socket (or cannot tell).
func New() *Procs {
	p := &Procs{pidfds: map[int]int{}, errs: map[int]error{}, started: map[int]uint64{}}
	switch retags, err := Retags(); {
	case err != nil:
		p.retags = fmt.Errorf("%w: %w", ErrRetags, err)
	case retags:
		p.retags = ErrRetags
	}
	return p
}

// Safe is nil where a duplicate changes nothing about the socket it
// shares, or else an error wrapping ErrRetags that Do would return.
func (p *Procs) Safe() error { return p.retags }

// Close closes every pidfd.
func (p *Procs) Close() {
	for _, fd := range p.pidfds {
		unix.Close(fd)
	}
	clear(p.pidfds)
}

// Do runs fn on a duplicate of descriptor fd of process pid, as a
// syscall.RawConn whose Control alone works (the duplicate is never
// registered with this process's poller), and closes the duplicate. An
// error that is the same for every descriptor of pid (no permission, no
// process) is remembered, and returned at once for the next.
func (p *Procs) Do(pid, fd int, fn func(rc syscall.RawConn) error) error {
	if p.retags != nil {
		return p.retags
	}
	if err := p.errs[pid]; err != nil {
		return err
	}
	pfd, ok := p.pidfds[pid]
	if !ok {
		var err error
		if pfd, err = unix.PidfdOpen(pid, 0); err != nil {
			p.errs[pid] = procErr(pid, "pidfd_open", err)
			return p.errs[pid]
		}
		p.pidfds[pid] = pfd
	}
	dup, err := unix.PidfdGetfd(pfd, fd, 0)
	if errors.Is(err, unix.EBADF) {
		return fmt.Errorf("process %d descriptor %d: %w: %w", pid, fd, ErrChanged, os.NewSyscallError("pidfd_getfd", err))
	}
	if err != nil {
		err = procErr(pid, "pidfd_getfd", err)
		if errors.Is(err, ErrPermission) || errors.Is(err, ErrNoProcess) || errors.Is(err, unix.ENOSYS) {
			p.errs[pid] = err // the same for every socket of pid
		}
		return err
	}
	defer unix.Close(dup)
	return fn(fdRawConn(dup))
}

// Socket is Do for the socket with inode (and, unless 0, sock_diag cookie)
// held as descriptor fd by the process with pid and start time start
// (StartTime; 0: any): it checks the process once its pidfd is open (the
// pidfd then pins it), and the duplicate's inode and SO_COOKIE before fn
// runs, so that a pid, a descriptor number or an inode taken by another
// since can never be acted on.
func (p *Procs) Socket(pid int, start uint64, fd int, inode uint32, cookie uint64, fn func(rc syscall.RawConn) error) error {
	return p.Do(pid, fd, func(rc syscall.RawConn) error {
		if start != 0 && p.started[pid] != start {
			// Once per process: its pidfd, open now, pins it from here on.
			if got, err := StartTime(pid); err != nil || got != start {
				return fmt.Errorf("process %d: %w (it started again since)", pid, ErrNoProcess)
			}
			p.started[pid] = start
		}
		var st unix.Stat_t
		var err error
		rc.Control(func(dup uintptr) { err = unix.Fstat(int(dup), &st) })
		if err != nil {
			return fmt.Errorf("process %d descriptor %d: %w", pid, fd, os.NewSyscallError("fstat", err))
		}
		if st.Ino != uint64(inode) {
			return fmt.Errorf("process %d descriptor %d: %w", pid, fd, ErrChanged)
		}
		if cookie != 0 {
			var got uint64
			rc.Control(func(dup uintptr) { got, err = unix.GetsockoptUint64(int(dup), unix.SOL_SOCKET, unix.SO_COOKIE) })
			if err != nil {
				return fmt.Errorf("process %d descriptor %d: %w", pid, fd, os.NewSyscallError("getsockopt SO_COOKIE", err))
			}
			if got != cookie {
				return fmt.Errorf("process %d descriptor %d: %w", pid, fd, ErrChanged)
			}
		}
		return fn(rc)
	})
}

func procErr(pid int, call string, err error) error {
	serr := os.NewSyscallError(call, err)
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("process %d: %w: %w", pid, ErrPermission, serr)
	case errors.Is(err, unix.ESRCH):
		return fmt.Errorf("process %d: %w: %w", pid, ErrNoProcess, serr)
	}
	return fmt.Errorf("process %d: %w", pid, serr)
}

// fdRawConn is a syscall.RawConn over a bare descriptor, for options
// only. An *os.File would register the duplicate with this process's
// poller; in the one demo run whose census read the pairs' sockets so,
// just before their servers vanished, the busy gRPC streams were found
// idle at the vanishing; in the two runs since with bare descriptors,
// they were busy as in runs without a census. The mechanism is not
// established; a bare descriptor touches nothing but the options.
type fdRawConn int

func (fd fdRawConn) Control(f func(uintptr)) error { f(uintptr(fd)); return nil }

func (fdRawConn) Read(func(uintptr) bool) error  { return errors.ErrUnsupported }
func (fdRawConn) Write(func(uintptr) bool) error { return errors.ErrUnsupported }

// StartTime is when process pid started, in clock ticks since boot
// (field 22 of /proc/PID/stat): with the pid, it names one process across
// pid reuse.
func StartTime(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22
}

// statFields are the fields of /proc/PID/stat after the command name
// (field 3 on), at least 20 of them.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
		}
		return nil, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, fmt.Errorf("process %d: /proc/%d/stat: no command name", pid, pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil, fmt.Errorf("process %d: /proc/%d/stat: %d fields", pid, pid, len(f)+2)
	}
	return f, nil
}

// Inode is the inode of the socket behind descriptor fd of process pid
// (0 if fd is not a socket), from /proc/PID/fd.
func Inode(pid, fd int) (uint32, error) {
	link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(fd))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat("/proc/" + strconv.Itoa(pid)); serr != nil {
				return 0, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
			}
			return 0, nil // the descriptor is closed
		}
		return 0, err
	}
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 32)
	return uint32(n), err
}

// Exited reports whether process pid has ended: gone, or a zombie its
// parent has not collected yet.
func Exited(pid int) bool {
	f, err := statFields(pid)
	return err != nil || f[0] == "Z"
}
