package tuning

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/ghostsock/ghostsock/tuning/internal/guard"
)

// Cause is why a connection ended, as far as its error, and where the kit
// holds the socket the kernel's own account of it, can tell.
type Cause uint8

const (
	// CauseNone: no error.
	CauseNone Cause = iota
	// CauseClosed: an orderly end, the peer's FIN (io.EOF) or a Close on
	// this side (net.ErrClosed).
	CauseClosed
	// CauseSilentPeer: the kernel ended the connection because the peer
	// fell silent (ETIMEDOUT from the user timeout, keepalive or
	// tcp_retries2; EHOSTUNREACH or ENETUNREACH when an ICMP error was
	// the last thing heard). Classify cannot tell idle from busy; the
	// kit's own connections report CauseReapedIdle or CauseReapedBusy.
	CauseSilentPeer
	// CauseReapedIdle: ended for a silent peer with nothing queued, by
	// keepalive (or the user timeout acting on a keepalive probe).
	CauseReapedIdle
	// CauseReapedBusy: ended for a silent peer while data was
	// unacknowledged, or waited behind a window the peer stopped
	// answering probes for.
	CauseReapedBusy
	// CauseWindowStall: ended although the peer answered: its receive
	// window stayed shut past StallTimeout (guarded) or past the user
	// timeout (unguarded; see Guard). A live peer was cut.
	CauseWindowStall
	// CauseReset: the peer reset the connection (ECONNRESET, or EPIPE on a
	// write after its RST).
	CauseReset
	// CauseRefused: nothing listened (ECONNREFUSED).
	CauseRefused
	// CauseOther: anything else, a deadline this side set among them.
	CauseOther
)

var causeNames = [...]string{"none", "closed", "silent_peer", "reaped_idle", "reaped_busy", "window_stall", "reset", "refused", "other"}

// String is the cause's name, as metrics carry it: snake case, stable.
func (c Cause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return fmt.Sprintf("Cause(%d)", c)
}

// MarshalText makes a Cause its name in JSON.
func (c Cause) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a name MarshalText wrote.
func (c *Cause) UnmarshalText(b []byte) error { return unmarshalName(b, causeNames[:], c) }

// Reaped reports a cause that is the kernel ending a connection for a
// silent peer: what the kit is for.
func (c Cause) Reaped() bool {
	return c == CauseSilentPeer || c == CauseReapedIdle || c == CauseReapedBusy
}

// Classify says why a connection ended from the error the application saw:
// from a net.Conn's Read or Write, from net/http (*url.Error, the HTTP/2
// transport's errors) or from grpc-go (a status error, which keeps only
// the underlying error's text). It follows the error's chain first
// (errors.Is with syscall's errnos, io.EOF, net.ErrClosed), then, for
// errors that lost their chain, the text the C library gives each errno.
// A deadline this side set is CauseOther, never CauseSilentPeer, although
// both are timeouts.
func Classify(err error) Cause {
	switch {
	case err == nil:
		return CauseNone
	case errors.Is(err, os.ErrDeadlineExceeded):
		return CauseOther
	}
	for _, r := range causeRules {
		for _, e := range r.errs {
			if errors.Is(err, e) {
				return r.cause
			}
		}
	}
	msg := err.Error()
	for _, r := range causeRules {
		for _, e := range r.errs {
			if strings.Contains(msg, e.Error()) {
				return r.cause
			}
		}
	}
	if msg == "EOF" || strings.HasSuffix(msg, ": EOF") || strings.HasSuffix(msg, ": unexpected EOF") {
		return CauseClosed
	}
	return CauseOther
}

// causeRules are the errors each cause stands for, most specific first.
// Their texts are what grpc-go's status messages keep of them.
var causeRules = []struct {
	cause Cause
	errs  []error
}{
	{CauseSilentPeer, []error{syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH}},
	{CauseReset, []error{syscall.ECONNRESET, syscall.EPIPE}},
	{CauseRefused, []error{syscall.ECONNREFUSED}},
	{CauseClosed, []error{io.EOF, io.ErrUnexpectedEOF, net.ErrClosed}},
}

// refine turns CauseSilentPeer into the case the kernel's state at the
// error shows: a stall if the guard judged one, or, unguarded, if the
// peer's last word was a shut window (PeerWindow 0) and at most one probe
// was out (a live reader's cut shows Probes 1 on Linux 6.18; Rule 5 in the
// package doc); busy if data was unacknowledged or queued; idle otherwise.
// Unguarded, a peer that vanished with its window shut and a segment in
// flight looks like a stall too; the guard, which watches the silence,
// tells them apart.
func refine(c Cause, s Snapshot, cut guard.Cut) Cause {
	if c != CauseSilentPeer {
		return c
	}
	switch {
	case cut == guard.CutStalled:
		return CauseWindowStall
	case cut == guard.CutNone && !s.Guarded && !s.Idle() && s.PeerWindow == 0 && s.Probes < 2:
		return CauseWindowStall
	case s.Idle():
		return CauseReapedIdle
	}
	return CauseReapedBusy
}
