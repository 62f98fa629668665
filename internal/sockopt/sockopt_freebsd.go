package sockopt

import (
	"time"

	"golang.org/x/sys/unix"
)

// FreeBSD has keepalive but no user timeout: a UserTimeout other than zero
// is an error wrapping errors.ErrUnsupported. Accepted sockets are set on
// accept.
var platform = platformOptions{
	userTimeoutUnit: time.Millisecond,
	keepAlive:       &sockopt{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE},
	keepIdle:        &sockopt{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
	keepIntvl:       &sockopt{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
	keepCount:       &sockopt{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
}

const platformInherits = false
