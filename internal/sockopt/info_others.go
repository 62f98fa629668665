//go:build !linux

package sockopt

import "syscall"

// TCPInfo reports that this platform has Linux's TCP_INFO: it has not.
const TCPInfo = false

// ReadInfo needs Linux's TCP_INFO.
func ReadInfo(uintptr) (Info, error) { return Info{}, Unsupported("TCP_INFO") }

// OutQueue needs Linux's SIOCOUTQ.
func OutQueue(uintptr) (uint32, error) { return 0, Unsupported("SIOCOUTQ") }

// SocketError needs Linux.
func SocketError(uintptr) (error, error) { return nil, Unsupported("SO_ERROR") }

// SourceWait waits for nothing outside Linux: every copy goes on as it
// would without.
type SourceWait struct{}

// NewSourceWait returns a SourceWait that never waits.
func NewSourceWait(syscall.RawConn) *SourceWait { return &SourceWait{} }

// Await returns 0.
func (*SourceWait) Await() int { return 0 }
