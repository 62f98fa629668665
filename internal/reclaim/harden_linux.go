package reclaim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/internal/procsock"
	"github.com/ghostsock/ghostsock/tuning"
)

// DefaultRecord is where Harden records what it replaced, for Undo. /run
// is cleared at boot, as the sockets are.
const DefaultRecord = "/run/ghostscan/harden.json"

// ErrNoFilter is Harden's error without a process or a port to act on: it
// never changes every socket of a host.
var ErrNoFilter = errors.New("reclaim: -harden needs -pid or -port: it changes only the sockets of the processes or the port named")

// ErrUnreadable is wrapped by Harden's error when a socket it would change
// cannot be read (another process's socket without ptrace rights, say):
// it changes nothing unless it can record what it replaces.
var ErrUnreadable = errors.New("reclaim: cannot read a socket's options, so nothing was changed")

// Kind says what a Change is about.
type Kind string

const (
	Listening Kind = "listen"   // a listening socket: connections it accepts later inherit
	Connected Kind = "conn"     // a connection open when Harden ran
	Accepted  Kind = "accepted" // found by Undo: accepted since, it inherited the listener's
)

// Change is one socket's options as Harden or Undo found them and as they
// leave (or, in a dry run, would leave) them.
type Change struct {
	Kind    Kind
	Local   netip.AddrPort
	Remote  *netip.AddrPort `json:",omitempty"`
	PID     int
	Process string `json:",omitempty"`
	// Start is the process's start time (clock ticks since boot): with
	// PID, it names the process across pid reuse.
	Start uint64
	census.Socket
	Verdict tuning.Verdict    `json:",omitempty"`
	Before  census.ConfigJSON // what the socket held
	After   census.ConfigJSON // what Harden set, or Undo puts back
	// Outcome: "would set" or "would put back" in a dry run; "set", "put
	// back", "nothing to put back", "gone: why" or "failed: why" after.
	Outcome string
}

// Pending reports whether a dry run left the change to be made.
func (ch *Change) Pending() bool { return strings.HasPrefix(ch.Outcome, "would ") }

// Failed reports whether the change was tried and not made.
func (ch *Change) Failed() bool { return strings.HasPrefix(ch.Outcome, "failed") }

// Plan is what Harden will do.
type Plan struct {
	Budget        time.Duration
	KeepAliveOnly bool
	// Config is ForBudget(Budget): its UserTimeout (unless KeepAliveOnly)
	// and KeepAlive are what every socket gets.
	Config tuning.Config
	// IdleBound and BusyBound are Config's Bounds: a connection that
	// vanishes from now on is ended within them (busy: not with
	// KeepAliveOnly, which leaves a busy connection to the process's
	// own user timeout or tcp_retries2).
	IdleBound, BusyBound time.Duration
	Changes              []*Change
	// Stalled counts the connections whose data waits behind a window
	// their peer keeps shut now: a live reader that stays so for the user
	// timeout is cut by it (the window guard that prevents this runs only
	// in a process built with ghostsock). KeepAliveOnly leaves them be.
	Stalled int
	// Unowned counts matching sockets no process is seen to hold (a
	// connection not yet accepted, or a socket held where this process
	// cannot look): left alone. A plan of none but such sockets is refused.
	Unowned int
	// Gone counts sockets that closed between the census and the reading
	// of their options.
	Gone int
}

// PlanHarden takes a census with o and plans to set ForBudget(budget)'s
// options, or with keepAliveOnly its keepalive alone, on every listening
// socket and connection it picks; o.Port names a port of this host (a
// connection to a peer's port of that number is not picked). o must name a
// process or a port. It reads every socket's options first, and fails
// (ErrUnreadable, wrapping the cause) if it cannot read one: without them,
// Undo could not put them back.
func PlanHarden(o census.Options, budget time.Duration, keepAliveOnly bool) (*Plan, error) {
	if o.PID == 0 && o.Port == 0 {
		return nil, ErrNoFilter
	}
	cfg, err := tuning.ForBudget(budget)
	if err != nil {
		return nil, err
	}
	if o.PID != 0 {
		if _, err := procsock.StartTime(o.PID); err != nil {
			return nil, err
		}
		if _, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", o.PID)); errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("process %d: %w: %w", o.PID, procsock.ErrPermission, err)
		}
	}
	// The plan reads each socket itself, through a checked duplicate
	// (add): the census need not read them too.
	o.Settings = false
	c, err := census.Scan(o)
	if err != nil {
		return nil, err
	}
	p := &Plan{Budget: budget, KeepAliveOnly: keepAliveOnly, Config: cfg}
	p.IdleBound, p.BusyBound = cfg.Bounds()
	target := func(before tuning.Config) tuning.Config {
		after := before
		after.KeepAlive = cfg.KeepAlive
		if !keepAliveOnly {
			after.UserTimeout = cfg.UserTimeout
		}
		return after
	}
	procs := procsock.New()
	defer procs.Close()
	starts := map[int]uint64{}
	// add reads the socket's options itself, through a duplicate checked
	// to be that socket, so that the record holds what it replaces. A
	// socket closed since the census is left; one it may not read stops
	// the plan.
	add := func(ch *Change) error {
		if _, ok := starts[ch.PID]; !ok {
			start, err := procsock.StartTime(ch.PID)
			if err != nil {
				p.Gone++
				return nil // it exited since the census
			}
			starts[ch.PID] = start
		}
		ch.Start = starts[ch.PID]
		var before tuning.Config
		err := procs.Socket(ch.PID, ch.Start, ch.FD, ch.Inode, func(rc syscall.RawConn) (err error) {
			before, err = tuning.ReadRawConn(rc)
			return err
		})
		switch {
		case errors.Is(err, procsock.ErrChanged), errors.Is(err, procsock.ErrNoProcess):
			p.Gone++
			return nil
		case err != nil:
			return fmt.Errorf("%w: %s %v of %s[%d]: %w", ErrUnreadable, ch.Kind, ch.Local, ch.Process, ch.PID, err)
		}
		ch.Before, ch.After, ch.Outcome = census.OptionsJSON(before), census.OptionsJSON(target(before)), "would set"
		p.Changes = append(p.Changes, ch)
		return nil
	}
	for _, ln := range c.Listeners {
		if ln.PID == 0 {
			p.Unowned++
			continue
		}
		if err := add(&Change{Kind: Listening, Local: ln.Addr, PID: ln.PID, Process: ln.Process, Socket: ln.Socket}); err != nil {
			return nil, err
		}
	}
	for _, conn := range c.Connections {
		if o.Port != 0 && int(conn.Local.Port()) != o.Port {
			continue // -port names this host's port, not a peer's
		}
		if conn.PID == 0 {
			p.Unowned++
			continue
		}
		remote := conn.Remote
		ch := &Change{Kind: Connected, Local: conn.Local, Remote: &remote, PID: conn.PID, Process: conn.Process, Socket: conn.Socket, Verdict: conn.Verdict}
		if err := add(ch); err != nil {
			return nil, err
		}
		if conn.Verdict == tuning.WindowStalled {
			p.Stalled++
		}
	}
	if len(p.Changes) == 0 && p.Unowned > 0 {
		// Every socket it would change is held where this user cannot
		// look (or none is accepted yet): say so rather than do nothing.
		return nil, fmt.Errorf("%w: no process holding the %d matching sockets can be seen (run as root; a connection not yet accepted has none)", ErrUnreadable, p.Unowned)
	}
	return p, nil
}

// Apply records every change's Before in the file record (merged with
// what is there: a socket hardened twice keeps its first Before), then
// sets each change's After on its socket and reads it back. A socket that
// closed since the plan, or whose descriptor now holds another, is left
// ("gone"). The error is for the record, which is written before anything
// is set; each change's Outcome says how it went.
func (p *Plan) Apply(record string) error {
	if len(p.Changes) == 0 {
		return nil
	}
	if err := mergeRecord(record, p.Changes); err != nil {
		return err
	}
	procs := procsock.New()
	defer procs.Close()
	for _, ch := range p.Changes {
		ch.Outcome = setOn(procs, ch, ch.After.Config())
	}
	return nil
}

// setOn sets want on the socket ch names, if its descriptor still holds
// it, and reads it back: the Outcome.
func setOn(procs *procsock.Procs, ch *Change, want tuning.Config) string {
	var got tuning.Config
	err := procs.Socket(ch.PID, ch.Start, ch.FD, ch.Inode, func(rc syscall.RawConn) error {
		if err := setOptions(rc, want); err != nil {
			return err
		}
		var err error
		got, err = tuning.ReadRawConn(rc)
		return err
	})
	switch {
	case gone(err):
		return "gone: " + err.Error()
	case err != nil:
		return "failed: " + err.Error()
	case !sameOptions(got, want):
		return fmt.Sprintf("failed: read back %+v", census.OptionsJSON(got))
	}
	return "set"
}

// gone says whether err means that the socket, or its process, is no
// longer there: nothing to do for it, and nothing to keep in the record.
func gone(err error) bool {
	return errors.Is(err, procsock.ErrChanged) || errors.Is(err, procsock.ErrNoProcess)
}

// setOptions sets want's user timeout, keepalive (its schedule even when
// off, so that an Undo puts back the very figures) and RTOMax through
// tuning's Control, the one place the kit sets socket options.
func setOptions(rc syscall.RawConn, want tuning.Config) error {
	c := tuning.Config{UserTimeout: want.UserTimeout, KeepAlive: want.KeepAlive, RTOMax: want.RTOMax,
		NoGuard: true, IdleUnwatched: true}
	if !c.KeepAlive.Enable {
		// Control sets a schedule only with keepalive on: set it so, then
		// turn keepalive off. The timer armed between them is deleted at
		// once.
		on := c
		on.KeepAlive.Enable = true
		if err := on.Control("tcp", "", rc); err != nil {
			return err
		}
	}
	return c.Control("tcp", "", rc)
}

// sameOptions compares the options Harden sets.
func sameOptions(a, b tuning.Config) bool {
	return a.UserTimeout == b.UserTimeout && a.KeepAlive == b.KeepAlive && a.RTOMax == b.RTOMax
}

// Record is the file Harden writes and Undo reads.
type Record struct {
	Changes []*Change
}

func readRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reclaim: the record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reclaim: the record %s: %w", path, err)
	}
	return &r, nil
}

func writeRecord(path string, r *Record) error {
	if len(r.Changes) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("reclaim: the record: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("reclaim: the record: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("reclaim: the record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("reclaim: the record: %w", err)
	}
	return nil
}

// key names one socket across runs: the process (pid and start) and the
// socket's inode.
type key struct {
	pid   int
	start uint64
	inode uint32
}

func (ch *Change) key() key { return key{ch.PID, ch.Start, ch.Inode} }

func mergeRecord(path string, changes []*Change) error {
	r, err := readRecord(path)
	if err != nil {
		return err
	}
	have := map[key]*Change{}
	for _, ch := range r.Changes {
		have[ch.key()] = ch
	}
	for _, ch := range changes {
		if old, ok := have[ch.key()]; ok {
			old.After = ch.After // the first Before is the process's own
			continue
		}
		c := *ch
		c.Outcome = ""
		r.Changes = append(r.Changes, &c)
		have[c.key()] = &c
	}
	return writeRecord(path, r)
}

// Undo puts back what the record says Harden replaced, option by option
// (see restore): an option still as Harden set it gets its Before again;
// one the process changed since is left as the process set it. For a
// listening socket it also restores the connections accepted from it since
// (which inherited Harden's options), whichever process holds them, by the
// same rule against the listener's record, except that their keepalive
// stays on where it is on (with the listener's schedule put back): the
// server may have turned it on itself.
// Without yes it changes nothing and says what it would do. With yes it
// removes from the record every socket it restored or found gone, and
// keeps those it failed on.
func Undo(record string, yes bool) ([]*Change, error) {
	r, err := readRecord(record)
	if err != nil {
		return nil, err
	}
	if len(r.Changes) == 0 {
		return nil, fmt.Errorf("reclaim: nothing to undo: no record at %s", record)
	}
	procs := procsock.New()
	defer procs.Close()
	var out []*Change
	recorded := map[key]bool{}
	for _, ch := range r.Changes {
		recorded[ch.key()] = true
	}
	var keep []*Change
	for _, ch := range r.Changes {
		u := *ch
		out = append(out, &u)
		cur, err := current(procs, &u)
		switch {
		case gone(err):
			u.Before, u.After, u.Outcome = ch.After, ch.Before, "gone: "+err.Error()
			continue
		case err != nil:
			u.Before, u.After, u.Outcome = ch.After, ch.Before, "failed: "+err.Error()
			keep = append(keep, ch)
			continue
		}
		want := restore(cur, ch.Before.Config(), ch.After.Config())
		u.Before, u.After = census.OptionsJSON(cur), census.OptionsJSON(want)
		switch {
		case sameOptions(cur, want):
			u.Outcome = "nothing to put back: the process changed every option since"
			if sameOptions(cur, ch.Before.Config()) {
				u.Outcome = "nothing to put back"
			}
		case !yes:
			u.Outcome = "would put back"
		default:
			if u.Outcome = setOn(procs, &u, want); u.Outcome == "set" {
				u.Outcome = "put back"
			} else if u.Failed() {
				keep = append(keep, ch)
			}
		}
		if ch.Kind == Listening {
			out = append(out, undoAccepted(procs, ch, recorded, yes)...)
		}
	}
	if yes {
		return out, writeRecord(record, &Record{Changes: keep})
	}
	return out, nil
}

// current reads the options of the socket ch names, if the process and
// the descriptor still hold it.
func current(procs *procsock.Procs, ch *Change) (tuning.Config, error) {
	var cur tuning.Config
	err := procs.Socket(ch.PID, ch.Start, ch.FD, ch.Inode, func(rc syscall.RawConn) error {
		var err error
		cur, err = tuning.ReadRawConn(rc)
		return err
	})
	return cur, err
}

// restore is cur with what is still as Harden set it (after) put back to
// before: the user timeout, RTOMax, and keepalive as one (its switch and
// schedule: a process that set any of them since, as Go's accept turns
// keepalive on with its own idle, keeps all of them as it set them).
func restore(cur, before, after tuning.Config) tuning.Config {
	want := cur
	if cur.UserTimeout == after.UserTimeout {
		want.UserTimeout = before.UserTimeout
	}
	if cur.KeepAlive == after.KeepAlive {
		want.KeepAlive = before.KeepAlive
	}
	if cur.RTOMax == after.RTOMax {
		want.RTOMax = before.RTOMax
	}
	return want
}

// undoAccepted restores the connections accepted from listener ln since
// Harden (those not in the record), whichever process holds them: a
// server that forks per connection, as PostgreSQL does, hands each to a
// child.
func undoAccepted(procs *procsock.Procs, ln *Change, recorded map[key]bool, yes bool) []*Change {
	c, err := census.Scan(census.Options{Filter: census.Filter{Port: int(ln.Local.Port())}})
	if err != nil {
		return []*Change{{Kind: Accepted, Local: ln.Local, PID: ln.PID, Process: ln.Process, Outcome: "failed: " + err.Error()}}
	}
	var out []*Change
	for _, conn := range c.Connections {
		if conn.Listener == nil || *conn.Listener != ln.Local || conn.PID == 0 {
			continue
		}
		start, err := procsock.StartTime(conn.PID)
		if err != nil {
			continue // it exited since the census
		}
		remote := conn.Remote
		u := &Change{Kind: Accepted, Local: conn.Local, Remote: &remote, PID: conn.PID, Process: conn.Process,
			Start: start, Socket: conn.Socket, Verdict: conn.Verdict}
		if recorded[u.key()] {
			continue
		}
		cur, err := current(procs, u)
		switch {
		case gone(err):
			continue
		case err != nil:
			u.Outcome = "failed: " + err.Error()
			out = append(out, u)
			continue
		}
		want := restore(cur, ln.Before.Config(), ln.After.Config())
		// Keepalive stays on: whether it came from the listener or from the
		// server itself (PostgreSQL turns it on for every backend) cannot be
		// told, and on is the safe side (its schedule is put back).
		want.KeepAlive.Enable = cur.KeepAlive.Enable
		u.Before, u.After = census.OptionsJSON(cur), census.OptionsJSON(want)
		switch {
		case sameOptions(cur, want):
			continue // it holds nothing Harden set
		case !yes:
			u.Outcome = "would put back"
		default:
			if u.Outcome = setOn(procs, u, want); u.Outcome == "set" {
				u.Outcome = "put back"
			}
		}
		out = append(out, u)
	}
	return out
}

// MarshalJSON writes p with every duration in milliseconds, in fields
// ending in Ms, as a census does.
func (p *Plan) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Budget                 census.Duration `json:"BudgetMs"`
		KeepAliveOnly          bool
		Config                 census.ConfigJSON
		IdleBound              census.Duration `json:"IdleBoundMs"`
		BusyBound              census.Duration `json:"BusyBoundMs"`
		Changes                []*Change
		Stalled, Unowned, Gone int
	}{census.Duration(p.Budget), p.KeepAliveOnly, census.OptionsJSON(p.Config), census.Duration(p.IdleBound),
		census.Duration(p.BusyBound), p.Changes, p.Stalled, p.Unowned, p.Gone})
}
