package reclaim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ghostsock/ghostsock/internal/census"
	"github.com/ghostsock/ghostsock/internal/netns"
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

// ErrRecord is wrapped by the errors of the record: it could not be read,
// locked or written.
var ErrRecord = errors.New("reclaim: the record")

// Kind says what a Change is about.
type Kind string

const (
	Listening Kind = "listen"   // a listening socket: connections it accepts later inherit
	Connected Kind = "conn"     // a connection open when Harden ran
	Accepted  Kind = "accepted" // found by Undo: accepted since, it inherited the listener's
)

// Holder is a process holding a socket, as the census names it, with its
// start time (clock ticks since boot): with the pid, it names the process
// across pid reuse.
type Holder struct {
	census.Holder
	Start uint64
}

// Change is one socket's options as Harden or Undo found them and as they
// leave (or, in a dry run, would leave) them.
type Change struct {
	Kind   Kind
	Local  netip.AddrPort
	Remote *netip.AddrPort `json:",omitempty"`
	// PID, Process and Start name the holder acted through; Holders are
	// every process that held the socket when it was recorded (a prefork
	// server's listener is held by each child). Undo reaches the socket
	// through any of them, or any process holding it now.
	PID     int
	Process string `json:",omitempty"`
	Start   uint64
	Holders []Holder `json:",omitempty"`
	// NetNS is the network namespace the socket lives in (its inode):
	// Undo looks there for the connections a listener accepted since.
	NetNS uint64 `json:",omitempty"`
	census.Socket
	Verdict tuning.Verdict `json:",omitempty"`
	// Before is what the socket held before Harden: for a connection a
	// hardened listener handed Harden's options, the listener's own.
	Before census.ConfigJSON
	After  census.ConfigJSON // what Harden set, or Undo puts back
	// Outcome: "would set" or "would put back" in a dry run; "set", "put
	// back", "already set", "nothing to put back", "gone: why" or
	// "failed: why" after.
	Outcome string
}

// Pending reports whether a dry run left the change to be made.
func (ch *Change) Pending() bool { return strings.HasPrefix(ch.Outcome, "would ") }

// Failed reports whether the change was tried and not made.
func (ch *Change) Failed() bool { return strings.HasPrefix(ch.Outcome, "failed") }

// Gone reports that no process holds the socket any more.
func (ch *Change) Gone() bool { return strings.HasPrefix(ch.Outcome, "gone") }

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
// socket and connection it picks (o.Port: a local or remote port, as the
// census picks; o.PID: any process holding the socket). o must name a
// process or a port. It reads every socket's options first, and fails
// (ErrUnreadable, wrapping the cause) if it cannot read one: without them,
// Undo could not put them back. A socket already holding the options is
// left out of the record; a connection accepted from a listener record
// names is recorded with the listener's Before, not with what it
// inherited. It refuses where reading would re-tag the sockets
// (procsock.ErrRetags).
func PlanHarden(o census.Options, budget time.Duration, keepAliveOnly bool, record string) (*Plan, error) {
	if o.PID == 0 && o.Port == 0 {
		return nil, ErrNoFilter
	}
	cfg, err := tuning.ForBudget(budget)
	if err != nil {
		return nil, err
	}
	procs := procsock.New()
	defer procs.Close()
	if err := readable(procs, o.PID); err != nil {
		return nil, err
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
	pl := &planner{p: p, procs: procs, netns: c.NetNS, accepted: map[*Change]*netip.AddrPort{}}
	if err := pl.addCensus(c); err != nil {
		return nil, err
	}
	if len(p.Changes) == 0 && p.Unowned > 0 {
		// Every socket it would change is held where this user cannot
		// look (or none is accepted yet): say so rather than do nothing.
		return nil, fmt.Errorf("%w: no process holding the %d matching sockets can be seen (run as root; a connection not yet accepted has none)", ErrUnreadable, p.Unowned)
	}
	if err := pl.keepRecorded(record); err != nil {
		return nil, err
	}
	return p, nil
}

// readable refuses a plan whose sockets could not be read: where reading
// would re-tag them, or where process pid (0: none named) is gone or may
// not be looked into.
func readable(procs *procsock.Procs, pid int) error {
	if err := procs.Safe(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	if pid == 0 {
		return nil
	}
	if _, err := procsock.StartTime(pid); err != nil {
		return err
	}
	if _, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("process %d: %w: %w", pid, procsock.ErrPermission, err)
	}
	return nil
}

// planner builds a Plan from one census.
type planner struct {
	p        *Plan
	procs    *procsock.Procs
	netns    uint64                      // the census's network namespace
	accepted map[*Change]*netip.AddrPort // a connection's listener
}

// addCensus adds a change for every listener and connection of c that a
// process is seen to hold; the others count as Unowned.
func (pl *planner) addCensus(c *census.Census) error {
	for _, ln := range c.Listeners {
		if ln.PID == 0 {
			pl.p.Unowned++
			continue
		}
		ch := &Change{Kind: Listening, Local: ln.Addr, Socket: ln.Socket}
		if err := pl.add(ch, ln.Holders, nil); err != nil {
			return err
		}
	}
	for _, conn := range c.Connections {
		if conn.PID == 0 {
			pl.p.Unowned++
			continue
		}
		remote := conn.Remote
		ch := &Change{Kind: Connected, Local: conn.Local, Remote: &remote, Socket: conn.Socket, Verdict: conn.Verdict}
		if err := pl.add(ch, conn.Holders, conn.Listener); err != nil {
			return err
		}
		if conn.Verdict == tuning.WindowStalled && ch.Pending() {
			pl.p.Stalled++
		}
	}
	return nil
}

// add reads the socket's options itself, through a duplicate checked to
// be that socket, so that the record holds what it replaces. A socket
// closed since the census is left; one it may not read stops the plan.
// from is the listener a connection was accepted on, if any.
func (pl *planner) add(ch *Change, hs []census.Holder, from *netip.AddrPort) error {
	ch.NetNS = pl.netns
	ch.Holders = holders(hs)
	if len(ch.Holders) == 0 {
		pl.p.Gone++
		return nil // every holder exited since the census
	}
	cur, err := read(pl.procs, ch, nil)
	switch {
	case gone(err):
		pl.p.Gone++
		return nil
	case err != nil:
		return fmt.Errorf("%w: %s %v of %s[%d]: %w", ErrUnreadable, ch.Kind, ch.Local, ch.Process, ch.PID, err)
	}
	after := pl.p.target(cur)
	ch.Before, ch.After, ch.Outcome = census.OptionsJSON(cur), census.OptionsJSON(after), "would set"
	if sameOptions(cur, after) {
		ch.Outcome = "already set"
	}
	pl.p.Changes = append(pl.p.Changes, ch)
	pl.accepted[ch] = from
	return nil
}

// target is what a socket holding before gets: the plan's keepalive and,
// unless KeepAliveOnly, its user timeout.
func (p *Plan) target(before tuning.Config) tuning.Config {
	after := before
	after.KeepAlive = p.Config.KeepAlive
	if !p.KeepAliveOnly {
		after.UserTimeout = p.Config.UserTimeout
	}
	return after
}

// keepRecorded puts first what the record says a socket held: a socket
// hardened before keeps its first Before, and a connection accepted since
// from a listener hardened before held the listener's.
func (pl *planner) keepRecorded(record string) error {
	rec, err := readRecord(record)
	if err != nil {
		return err
	}
	x := rec.index()
	for _, ch := range pl.p.Changes {
		from := pl.accepted[ch]
		if old := x.socket(ch); old != nil {
			ch.Before = old.Before
		} else if ln := x.listener(pl.netns, from); ln != nil && ch.Kind == Connected && from != nil {
			ch.Before = census.OptionsJSON(inherited(ch.Before.Config(), ln))
		}
	}
	return nil
}

// holders are hs with their start times, less those that exited since.
func holders(hs []census.Holder) []Holder {
	var out []Holder
	for _, h := range hs {
		if start, err := procsock.StartTime(h.PID); err == nil {
			out = append(out, Holder{h, start})
		}
	}
	return out
}

// inherited is what a connection accepted from hardened listener ln held
// before Harden, as far as can be told: what it holds, with what is still
// as Harden set it on ln put back to ln's Before. Keepalive stays on where
// it is on (with ln's schedule put back): whether it came from the
// listener or from the server itself (PostgreSQL turns it on for every
// backend) cannot be told, and on is the safe side.
func inherited(cur tuning.Config, ln *Change) tuning.Config {
	want := restore(cur, ln.Before.Config(), ln.After.Config())
	want.KeepAlive.Enable = cur.KeepAlive.Enable
	return want
}

// Harden plans with PlanHarden, calls show with the plan, and with yes
// applies it: it records every change's Before in record (merged with what
// is there: a socket hardened twice keeps its first Before), sets each
// change's After on its socket and reads it back, then records the After
// that each set took. A socket already holding it is neither recorded nor
// set; one closed since the plan, or whose descriptor now holds another,
// is left ("gone"). With yes it holds the record's lock from the plan to
// the last write, so that another -harden or an -undo never comes between
// what it reads and what it sets. The error is for the plan or the
// record, which is written before anything is set; each change's Outcome
// says how it went.
func Harden(o census.Options, budget time.Duration, keepAliveOnly bool, record string, yes bool, show func(*Plan)) (*Plan, error) {
	var p *Plan
	run := func() (err error) {
		if p, err = PlanHarden(o, budget, keepAliveOnly, record); err != nil {
			return err
		}
		show(p)
		if yes {
			return p.apply(record)
		}
		return nil
	}
	var err error
	if yes {
		err = locked(record, run)
	} else {
		err = run()
	}
	return p, err
}

// apply is Harden's work once the plan is shown, under the record's lock.
func (p *Plan) apply(record string) error {
	var todo []*Change
	for _, ch := range p.Changes {
		if ch.Pending() {
			todo = append(todo, ch)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	r, err := readRecord(record)
	if err != nil {
		return err
	}
	added := r.add(todo)
	if err := writeRecord(record, r); err != nil {
		return err
	}
	procs := procsock.New()
	defer procs.Close()
	for _, ch := range todo {
		ch.Outcome = setOn(procs, ch, nil, ch.After.Config())
	}
	r.took(todo, added)
	return writeRecord(record, r)
}

// read reads the options of the socket ch names (see reach).
func read(procs *procsock.Procs, ch *Change, now map[uint32][]census.Holder) (tuning.Config, error) {
	var cur tuning.Config
	err := reach(procs, ch, now, func(rc syscall.RawConn) error {
		var err error
		cur, err = tuning.ReadRawConn(rc)
		return err
	})
	return cur, err
}

// reach runs fn on the socket ch names through the first process that
// still holds it: those recorded, then those now holding its inode (now,
// if given; a prefork server forks children after Harden), each checked
// to hold that very socket (inode and cookie). It records the holder it
// went through in ch. The error is gone (see gone) only if none holds it.
func reach(procs *procsock.Procs, ch *Change, now map[uint32][]census.Holder, fn func(rc syscall.RawConn) error) error {
	err := fmt.Errorf("%w: no process holds it", procsock.ErrChanged)
	tried := map[[2]int]bool{} // pid and descriptor
	try := func(h Holder) bool {
		tried[[2]int{h.PID, h.FD}] = true
		err = procs.Socket(h.PID, h.Start, h.FD, ch.Inode, ch.Cookie, fn)
		if gone(err) {
			return false
		}
		ch.PID, ch.Process, ch.Start, ch.FD = h.PID, h.Process, h.Start, h.FD
		return true
	}
	for _, h := range ch.holders() {
		if try(h) {
			return err
		}
	}
	for _, h := range now[ch.Inode] {
		if tried[[2]int{h.PID, h.FD}] {
			continue
		}
		start, serr := procsock.StartTime(h.PID)
		if serr == nil && try(Holder{h, start}) {
			return err
		}
	}
	return err
}

// holders are the processes recorded as holding ch's socket: Holders, or
// in a record written before there were, the one holder.
func (ch *Change) holders() []Holder {
	if len(ch.Holders) > 0 {
		return ch.Holders
	}
	return []Holder{{census.Holder{PID: ch.PID, Process: ch.Process, FD: ch.FD}, ch.Start}}
}

// setOn sets want on the socket ch names (see reach), and reads it back:
// the Outcome.
func setOn(procs *procsock.Procs, ch *Change, now map[uint32][]census.Holder, want tuning.Config) string {
	var got tuning.Config
	err := reach(procs, ch, now, func(rc syscall.RawConn) error {
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

// listenerKey names a listening address in one network namespace.
type listenerKey struct {
	netns uint64
	addr  netip.AddrPort
}

func unzoned(a *netip.AddrPort) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Addr().WithZone(""), a.Port())
}

// recordIndex finds the record's entries: a socket by its sock_diag
// cookie, unique to it until the host restarts, or in an entry written
// before cookies were kept, by its inode; a listening socket by its
// namespace and address (any namespace, for an entry written before
// namespaces were kept).
type recordIndex struct {
	cookies   map[uint64]*Change
	inodes    map[uint32]*Change
	listeners map[listenerKey]*Change
}

func (r *Record) index() *recordIndex {
	x := &recordIndex{map[uint64]*Change{}, map[uint32]*Change{}, map[listenerKey]*Change{}}
	for _, ch := range r.Changes {
		x.put(ch)
	}
	return x
}

func (x *recordIndex) put(ch *Change) {
	if ch.Cookie != 0 {
		x.cookies[ch.Cookie] = ch
	} else {
		x.inodes[ch.Inode] = ch
	}
	if ch.Kind == Listening {
		x.listeners[listenerKey{ch.NetNS, unzoned(&ch.Local)}] = ch
	}
}

// socket is the entry for the socket ch names, or nil.
func (x *recordIndex) socket(ch *Change) *Change {
	if e, ok := x.cookies[ch.Cookie]; ok && ch.Cookie != 0 {
		return e
	}
	return x.inodes[ch.Inode]
}

// listener is the entry for the listening socket on addr in namespace
// netns, or nil.
func (x *recordIndex) listener(netns uint64, addr *netip.AddrPort) *Change {
	if e, ok := x.listeners[listenerKey{netns, unzoned(addr)}]; ok {
		return e
	}
	return x.listeners[listenerKey{0, unzoned(addr)}]
}

// add records changes about to be made: a socket not yet in r with its
// Before; one already there keeps its first Before, and its After until
// the set takes (took). It returns the entries it added.
func (r *Record) add(changes []*Change) map[*Change]bool {
	x := r.index()
	added := map[*Change]bool{}
	for _, ch := range changes {
		if x.socket(ch) != nil {
			continue
		}
		c := *ch
		c.Outcome = ""
		r.Changes = append(r.Changes, &c)
		x.put(&c)
		added[&c] = true
	}
	return added
}

// took records what the sets of changes did: a socket set takes the After
// it holds now, and the holders seen; an entry add made for a set that did
// not take goes again (the socket holds what it held).
func (r *Record) took(changes []*Change, added map[*Change]bool) {
	x := r.index()
	drop := map[*Change]bool{}
	for _, ch := range changes {
		e := x.socket(ch)
		switch {
		case e == nil:
		case ch.Outcome == "set":
			e.After, e.Holders = ch.After, ch.Holders
			e.PID, e.Process, e.Start, e.FD = ch.PID, ch.Process, ch.Start, ch.FD
		case added[e]:
			drop[e] = true
		}
	}
	r.Changes = slices.DeleteFunc(r.Changes, func(ch *Change) bool { return drop[ch] })
}

// locked runs fn holding an exclusive lock on record (a lock file beside
// it, never followed if a symbolic link), so that runs at once take turns
// at reading and rewriting it.
func locked(record string, fn func() error) error {
	if err := os.MkdirAll(filepath.Dir(record), 0o700); err != nil {
		return fmt.Errorf("%w: %w (run as root, or name a -record this user may write)", ErrRecord, err)
	}
	fd, err := unix.Open(record+".lock", unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %s.lock: %w (run as root, or name a -record this user may write)", ErrRecord, record, os.NewSyscallError("open", err))
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("%w: %s.lock: %w", ErrRecord, record, os.NewSyscallError("flock", err))
	}
	return fn() // closing fd releases the lock
}

func readRecord(path string) (*Record, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return &Record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w (a symbolic link is never followed)", ErrRecord, path, os.NewSyscallError("open", err))
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRecord, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRecord, path, err)
	}
	return &r, nil
}

// writeRecord replaces the record with r, or removes it if r is empty,
// through a temporary file of a name no one else can take (O_EXCL) in
// its directory, renamed over it.
func writeRecord(path string, r *Record) error {
	if len(r.Changes) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %w", ErrRecord, err)
		}
		return nil
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRecord, err)
	}
	defer os.Remove(tmp.Name()) // gone once renamed
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRecord, err)
	}
	return nil
}

// Undo puts back what the record says Harden replaced, option by option
// (see restore): an option still as Harden set it gets its Before again;
// one the process changed since is left as the process set it. It reaches
// each socket through any process that holds it (see reach). For a
// listening socket it also restores the connections accepted from it
// since (which inherited Harden's options), whichever process holds them,
// in the listener's own network namespace, by the same rule (see
// inherited). Without yes it changes nothing and says what it would do.
// With yes it removes from the record every socket it restored or found
// gone, and keeps those it failed on, accepted connections included. It
// holds the record's lock throughout, and refuses where reading would
// re-tag the sockets (procsock.ErrRetags).
func Undo(record string, yes bool) (out []*Change, err error) {
	procs := procsock.New()
	defer procs.Close()
	if err := procs.Safe(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	err = locked(record, func() error {
		r, err := readRecord(record)
		if err != nil {
			return err
		}
		if len(r.Changes) == 0 {
			return fmt.Errorf("reclaim: nothing to undo: no record at %s", record)
		}
		var keep []*Change
		out, keep = undo(procs, r, yes)
		if yes {
			return writeRecord(record, &Record{Changes: keep})
		}
		return nil
	})
	return out, err
}

// undo is Undo's work on record r: what it did, and what to keep.
func undo(procs *procsock.Procs, r *Record, yes bool) (out, keep []*Change) {
	now, err := census.SocketHolders()
	if err != nil {
		now = nil // the recorded holders alone
	}
	x := r.index()
	for _, ch := range r.Changes {
		u := *ch
		out = append(out, &u)
		cur, err := read(procs, &u, now)
		reached, kept := err == nil, false
		switch {
		case gone(err):
			u.Before, u.After, u.Outcome = census.ConfigJSON{}, census.ConfigJSON{}, "gone: no process holds it now"
		case err != nil:
			u.Before, u.After, u.Outcome = ch.After, ch.Before, "failed: "+err.Error()
		default:
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
				if u.Outcome = setOn(procs, &u, now, want); u.Outcome == "set" {
					u.Outcome = "put back"
				}
			}
		}
		if u.Failed() {
			keep, kept = append(keep, ch), true
		}
		if ch.Kind != Listening {
			continue
		}
		at := &u
		if !reached {
			at = nil // gone, or unreadable: its namespace is looked for by its inode
		}
		acc, failed := undoAccepted(procs, at, ch, x, yes)
		out = append(out, acc...)
		if failed && !kept {
			keep = append(keep, ch) // the next -undo looks for them again
		}
	}
	return out, keep
}

// undoAccepted restores the connections accepted from listener ln (as
// recorded) since Harden (those not in the record), whichever process
// holds them: a server that forks per connection, as PostgreSQL does,
// hands each to a child. It looks in the listener's own network
// namespace: entered through its socket (reached as at), or, with at nil
// (a listener closed since, whose connections may live on), through a
// process in the recorded namespace. failed says that something was left
// to put back.
func undoAccepted(procs *procsock.Procs, at, ln *Change, x *recordIndex, yes bool) (out []*Change, failed bool) {
	var c *census.Census
	scan := func() (err error) {
		c, err = census.Scan(census.Options{Filter: census.Filter{Port: int(ln.Local.Port())}})
		return err
	}
	err := fmt.Errorf("%w: no process holds it", procsock.ErrChanged)
	if at != nil {
		err = reach(procs, at, nil, func(rc syscall.RawConn) error {
			var nsfd int
			var err error
			rc.Control(func(fd uintptr) { nsfd, err = netns.OfSocket(fd) })
			if err != nil {
				return err
			}
			defer unix.Close(nsfd)
			return netns.Do(nsfd, scan)
		})
	}
	if gone(err) {
		err = inNetNS(ln.NetNS, scan)
	}
	if err != nil {
		return []*Change{{Kind: Accepted, Local: ln.Local, NetNS: ln.NetNS,
			Outcome: "failed: looking for the connections it accepted: " + err.Error()}}, true
	}
	for _, conn := range c.Connections {
		if conn.PID == 0 || !acceptedOn(conn.Local, ln.Local) {
			continue
		}
		remote := conn.Remote
		u := &Change{Kind: Accepted, Local: conn.Local, Remote: &remote, NetNS: c.NetNS, Socket: conn.Socket,
			Verdict: conn.Verdict, Holders: holders(conn.Holders)}
		if x.socket(u) != nil || len(u.Holders) == 0 {
			continue // in the record, or its holders exited since the census
		}
		cur, err := read(procs, u, nil)
		switch {
		case gone(err):
			continue
		case err != nil:
			u.Outcome, failed = "failed: "+err.Error(), true
			out = append(out, u)
			continue
		}
		want := inherited(cur, ln)
		u.Before, u.After = census.OptionsJSON(cur), census.OptionsJSON(want)
		switch {
		case sameOptions(cur, want):
			continue // it holds nothing Harden set
		case !yes:
			u.Outcome = "would put back"
		default:
			if u.Outcome = setOn(procs, u, nil, want); u.Outcome == "set" {
				u.Outcome = "put back"
			}
			failed = failed || u.Failed()
		}
		out = append(out, u)
	}
	return out, failed
}

// acceptedOn reports whether a connection whose local address is local
// was accepted on a listening socket bound to ln: the same port, and the
// same address unless ln's is a wildcard.
func acceptedOn(local, ln netip.AddrPort) bool {
	return local.Port() == ln.Port() && (ln.Addr().IsUnspecified() || local.Addr().WithZone("") == ln.Addr().WithZone(""))
}

// inNetNS runs fn in the network namespace whose inode is ino: this
// thread's own (or any, for 0: a record written before namespaces were
// kept), or one a process is in.
func inNetNS(ino uint64, fn func() error) error {
	if own, err := netns.Own(); err != nil || ino == 0 || ino == own {
		return fn()
	}
	fd, err := netns.Find(ino)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return netns.Do(fd, fn)
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
