package sockopt

import (
	"fmt"
	"sync"
	"syscall"
)

// Control runs fn on the descriptor behind rc. It is tuning's one call of
// RawConn.Control, and it keeps the two errors apart: Control's own
// (net.ErrClosed, say) comes back wrapped, fn's as fn made it (an
// *os.SyscallError from the option calls).
//
// The function handed to RawConn.Control escapes, so a closure made per
// call would be allocated per dial and accept; a pooled call carries fn
// and its error instead.
func Control(rc syscall.RawConn, fn func(fd uintptr) error) error {
	c := calls.Get().(*call)
	c.fn = fn
	err := rc.Control(c.run)
	fnErr := c.err
	c.fn, c.err = nil, nil
	calls.Put(c)
	if err != nil {
		return fmt.Errorf("ghostsock: raw conn: %w", err)
	}
	return fnErr
}

type call struct {
	fn  func(fd uintptr) error
	err error
	run func(fd uintptr) // bound to this call once, when made
}

var calls = sync.Pool{New: func() any {
	c := new(call)
	c.run = func(fd uintptr) { c.err = c.fn(fd) }
	return c
}}
