package sockopt

import (
	"time"

	"golang.org/x/sys/unix"
)

// Linux has every option (tcp(7)). It copies a listening socket's options
// to the sockets it accepts (inet_csk_clone_lock copies the sock, and
// tcp_create_openreq_child arms the keepalive timer), so a listening
// socket is set once for all. TCP_RTO_MAX_MS came with Linux 6.15: older
// kernels answer ENOPROTOOPT, reported as errors.ErrUnsupported.
var platform = platformOptions{
	userTimeout:     &sockopt{"TCP_USER_TIMEOUT", unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT},
	userTimeoutUnit: time.Millisecond,
	keepAlive:       &sockopt{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE},
	keepIdle:        &sockopt{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
	keepIntvl:       &sockopt{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
	keepCount:       &sockopt{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
	rtoMax:          &sockopt{"TCP_RTO_MAX_MS", unix.IPPROTO_TCP, unix.TCP_RTO_MAX_MS},
}

const platformInherits = true
