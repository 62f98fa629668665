package sockopt

import (
	"time"

	"golang.org/x/sys/unix"
)

// macOS: TCP_RXT_CONNDROPTIME plays the part of TCP_USER_TIMEOUT, in
// seconds; TCP_KEEPALIVE is its TCP_KEEPIDLE. Accepted sockets are set on
// accept.
var platform = platformOptions{
	userTimeout:     &sockopt{"TCP_RXT_CONNDROPTIME", unix.IPPROTO_TCP, unix.TCP_RXT_CONNDROPTIME},
	userTimeoutUnit: time.Second,
	keepAlive:       &sockopt{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE},
	keepIdle:        &sockopt{"TCP_KEEPALIVE", unix.IPPROTO_TCP, unix.TCP_KEEPALIVE},
	keepIntvl:       &sockopt{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
	keepCount:       &sockopt{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
}

const platformInherits = false
