// Package reclaim changes a running host's connections from a census:
// it ends the connections judged dead (ghostscan -reap) and sets the
// options a budget chooses on the sockets of running processes, recording
// what they held so that it can be put back (ghostscan -harden, -undo).
package reclaim

import (
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/internal/procsock"
	"github.com/ghostsock/ghostsock/internal/sockopt"
)

// DefaultSilent is how long a connection's oldest data or probe must have
// gone unanswered before -reap ends it, unless told otherwise. It is past
// TCP_RTO_MAX (120 s) and the 100 s RFC 1122 (4.2.3.5) sets as the least
// time before TCP itself may give up, so that a live path's outages of
// seconds, handovers and tunnels, never reach it.
const DefaultSilent = 2 * time.Minute

// Dead reports whether conn is sending into silence: the kernel has
// retransmitted or probed it at least twice in a row without an answer
// (Snapshot.Tries), its oldest data or probe has gone unanswered for at
// least silent (Snapshot.Unanswered, a lower bound from the kernel's
// counters), and nothing came from the peer for silent either. A live
// peer cannot meet it: its answer to the first try resets the count, so a
// connection idle for long that has just sent a request, or whose first
// keepalive probe is on the wire, is never dead however long it was
// quiet. Nor is an idle connection that nothing probes (ghostscan -harden
// turns probes on for it), or one whose peer answers its window probes.
func Dead(conn *census.Conn, silent time.Duration) bool {
	s := conn.Snapshot
	return s.Tries() >= 2 && s.Unanswered() >= silent && s.Silence() >= silent
}

// Outcome is what -reap did, or would do, with one connection.
type Outcome string

const (
	WouldEnd Outcome = "would end" // a dry run
	Ended    Outcome = "ended"
	Answered Outcome = "left: it answered since" // alive at the second look
	Gone     Outcome = "gone"                    // ended before reap acted
	Failed   Outcome = "failed"
	// Ending: given a user timeout its silence exceeds, the connection is
	// ended by its own kernel, with ETIMEDOUT, at its next retransmission
	// or probe (ByUserTimeout).
	Ending Outcome = "ending at its next try"
)

// ErrNoHolder is ReapBy's error, by user timeout, for a socket no process
// this one can see holds: one no process holds (only SOCK_DESTROY can end
// it), or a caller without root.
var ErrNoHolder = errors.New("ghostscan: no process seen holding the socket, to set its user timeout through (run as root: holders come from /proc/PID/fd, and pidfd_getfd needs CAP_SYS_PTRACE)")

// By is how Reap ends a connection.
type By string

const (
	// ByDestroy ends it at once through sock_diag (SOCK_DESTROY), where
	// the kernel has CONFIG_INET_DIAG_DESTROY.
	ByDestroy By = "destroy"
	// ByUserTimeout gives its owner's socket, through a duplicate
	// (pidfd_getfd) checked to be that socket, a user timeout its silence
	// already exceeds: its kernel ends it at its next retransmission or
	// probe. It needs a process that holds the socket.
	ByUserTimeout By = "user-timeout"
)

// Reaped is one connection -reap judged dead, and what became of it.
type Reaped struct {
	Conn    *census.Conn
	Outcome Outcome
	By      By     `json:",omitempty"` // how it was ended, or is ending
	Err     string `json:",omitempty"`
}

// Reap takes a census with o, and ends every connection in it that Dead
// judges so with silent. Without yes it changes nothing and says what it
// would end. With yes it looks again first (a second census, so that a
// peer that answered since is left alone) and ends those still dead, by
// their sock_diag cookie, in the calling thread's network namespace. The
// error is for a census that failed, or for ending that is not permitted
// (ErrNotPermitted) or not possible (ErrCannotDestroy), in which case
// nothing was ended.
func Reap(o census.Options, silent time.Duration, yes bool) ([]*Reaped, error) {
	return ReapBy(o, silent, yes, "")
}

// ReapBy is Reap ending the connections by: ByDestroy, ByUserTimeout, or
// "" for ByDestroy where the kernel can destroy sockets and ByUserTimeout
// where it cannot (ErrCannotDestroy).
func ReapBy(o census.Options, silent time.Duration, yes bool, by By) ([]*Reaped, error) {
	c, err := census.Scan(o)
	if err != nil {
		return nil, err
	}
	dead := []*Reaped{} // [] in JSON when none
	for _, conn := range c.Connections {
		if Dead(conn, silent) {
			dead = append(dead, &Reaped{Conn: conn, Outcome: WouldEnd})
		}
	}
	if !yes || len(dead) == 0 {
		return dead, nil
	}
	again, err := census.Scan(o)
	if err != nil {
		return dead, err
	}
	now := map[uint64]*census.Conn{}
	for _, conn := range again.Connections {
		now[conn.Cookie] = conn
	}
	rp := &reaper{by: by, silent: silent}
	defer rp.close()
	for _, r := range dead {
		conn, ok := now[r.Conn.Cookie]
		switch {
		case !ok:
			r.Outcome = Gone
			continue
		case !Dead(conn, silent):
			r.Conn, r.Outcome = conn, Answered
			continue
		}
		r.Conn = conn
		if err := rp.end(r); err != nil {
			return dead, err
		}
	}
	return dead, nil
}

// reaper ends the connections ReapBy judged dead, one way or the other.
type reaper struct {
	by     By
	silent time.Duration
	procs  *procsock.Procs // for ByUserTimeout, opened when first needed
	acted  bool            // a connection has been ended, or set to end
}

// end ends r's connection and records how. Its error is one that would be
// the same for every connection, returned before any was changed.
func (rp *reaper) end(r *Reaped) error {
	if rp.by != ByUserTimeout {
		switch err := DestroySocket(r.Conn); {
		case err == nil:
			r.Outcome, r.By, rp.acted = Ended, ByDestroy, true
			return nil
		case errors.Is(err, ErrGone):
			r.Outcome = Gone
			return nil
		case errors.Is(err, ErrCannotDestroy) && rp.by == "":
			rp.by = ByUserTimeout // for this socket and every one after it
		case errors.Is(err, ErrNotPermitted), errors.Is(err, ErrCannotDestroy):
			return err
		default:
			r.Outcome, r.Err = Failed, err.Error()
			return nil
		}
	}
	if rp.procs == nil {
		rp.procs = procsock.New()
	}
	switch err := endByUserTimeout(rp.procs, r.Conn, rp.silent); {
	case err == nil:
		r.Outcome, r.By, rp.acted = Ending, ByUserTimeout, true
	case errors.Is(err, procsock.ErrChanged):
		r.Outcome = Gone
	case !rp.acted && (errors.Is(err, procsock.ErrPermission) || errors.Is(err, ErrNoHolder) && os.Geteuid() != 0):
		return err
	default:
		r.Outcome, r.Err = Failed, err.Error()
	}
	return nil
}

func (rp *reaper) close() {
	if rp.procs != nil {
		rp.procs.Close()
	}
}

// endByUserTimeout gives conn's socket, through the process that holds it,
// a user timeout of silent, which its silence already exceeds (Dead): the
// kernel ends it at its next retransmission, zero-window or keepalive
// probe, each of which checks the user timeout against how long it has
// gone unanswered (tcp_write_timeout, tcp_probe_timer,
// tcp_keepalive_timer). Should the peer answer first, the socket keeps a
// user timeout of silent.
func endByUserTimeout(procs *procsock.Procs, conn *census.Conn, silent time.Duration) error {
	if conn.PID == 0 {
		return ErrNoHolder
	}
	ut := silent.Truncate(time.Millisecond)
	return procs.Socket(conn.PID, 0, conn.FD, conn.Inode, conn.Cookie, func(rc syscall.RawConn) error {
		return sockopt.SetUserTimeout(rc, ut)
	})
}
