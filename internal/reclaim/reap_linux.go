// Package reclaim changes a running host's connections from a census:
// it ends the connections judged dead (ghostscan -reap) and sets the
// options a budget chooses on the sockets of running processes, recording
// what they held so that it can be put back (ghostscan -harden, -undo).
package reclaim

import (
	"errors"
	"time"

	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/tuning"
)

// DefaultSilent is how long a connection must have been sending into
// silence before -reap ends it, unless told otherwise. Two minutes is
// longer than any silence a live path shows: a live peer answers a
// retransmission within its RTO, which is well under a second on a LAN
// and a few seconds on the slowest phone paths ghostsock's lab measures
// (600 ms round trips, queues of 2 s); TCP's own backoff, which can leave
// a connection silent up to about twice an outage before its next
// retransmission gets through, still ends well inside it for the outages
// of seconds that handovers and tunnels cause. It is past the 100 seconds
// RFC 1122 (4.2.3.5) sets as the least time before TCP itself may give
// up on a connection, and past TCP_RTO_MAX (120 s), so that by then the
// kernel has sent several retransmissions or probes that went
// unanswered.
const DefaultSilent = 2 * time.Minute

// Dead reports whether conn has been sending into silence for at least
// silent: the census suspects it (a retransmission timeout fired
// unanswered, data waited past the RTO, keepalive or zero-window probes
// went unanswered) and nothing came from the peer for silent. An idle
// connection that nothing probes is never dead by this rule, whatever its
// silence: it cannot be told from a quiet live peer (ghostscan -harden
// turns probes on for it), nor is a connection whose peer answers its
// window probes (stalled, not dead).
func Dead(conn *census.Conn, silent time.Duration) bool {
	return conn.Verdict == tuning.Suspected && conn.Snapshot.Silence() >= silent
}

// Outcome is what -reap did, or would do, with one connection.
type Outcome string

const (
	WouldEnd Outcome = "would end" // a dry run
	Ended    Outcome = "ended"
	Answered Outcome = "left: it answered since" // alive at the second look
	Gone     Outcome = "gone"                    // ended before reap acted
	Failed   Outcome = "failed"
)

// Reaped is one connection -reap judged dead, and what became of it.
type Reaped struct {
	Conn    *census.Conn
	Outcome Outcome
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
		switch err := DestroySocket(conn); {
		case err == nil:
			r.Outcome = Ended
		case errors.Is(err, ErrGone):
			r.Outcome = Gone
		case errors.Is(err, ErrNotPermitted), errors.Is(err, ErrCannotDestroy):
			// The same for every socket: nothing was ended.
			return dead, err
		default:
			r.Outcome, r.Err = Failed, err.Error()
		}
	}
	return dead, nil
}
