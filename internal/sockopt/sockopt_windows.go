package sockopt

import (
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// Windows: TCP_MAXRT plays the part of TCP_USER_TIMEOUT, in seconds
// (0 restores the system default); TCP_KEEPIDLE, TCP_KEEPINTVL and
// TCP_KEEPCNT need Windows 10 version 1709 or later. Accepted sockets are
// set on accept.
var platform = platformOptions{
	userTimeout:     &sockopt{"TCP_MAXRT", windows.IPPROTO_TCP, windows.TCP_MAXRT},
	userTimeoutUnit: time.Second,
	keepAlive:       &sockopt{"SO_KEEPALIVE", windows.SOL_SOCKET, windows.SO_KEEPALIVE},
	keepIdle:        &sockopt{"TCP_KEEPIDLE", windows.IPPROTO_TCP, windows.TCP_KEEPIDLE},
	keepIntvl:       &sockopt{"TCP_KEEPINTVL", windows.IPPROTO_TCP, windows.TCP_KEEPINTVL},
	keepCount:       &sockopt{"TCP_KEEPCNT", windows.IPPROTO_TCP, windows.TCP_KEEPCNT},
}

func setInt(fd uintptr, o *sockopt, val int) error {
	if err := windows.SetsockoptInt(windows.Handle(fd), o.level, o.opt, val); err != nil {
		return os.NewSyscallError("setsockopt "+o.name, err)
	}
	return nil
}

func getInt(fd uintptr, o *sockopt) (int, error) {
	v, err := windows.GetsockoptInt(windows.Handle(fd), o.level, o.opt)
	if err != nil {
		return 0, os.NewSyscallError("getsockopt "+o.name, err)
	}
	return v, nil
}

const platformInherits = false
