//go:build linux || darwin || freebsd

package sockopt

import (
	"os"

	"golang.org/x/sys/unix"
)

func setInt(fd uintptr, o *sockopt, val int) error {
	if err := unix.SetsockoptInt(int(fd), o.level, o.opt, val); err != nil {
		return os.NewSyscallError("setsockopt "+o.name, err)
	}
	return nil
}

func getInt(fd uintptr, o *sockopt) (int, error) {
	v, err := unix.GetsockoptInt(int(fd), o.level, o.opt)
	if err != nil {
		return 0, os.NewSyscallError("getsockopt "+o.name, err)
	}
	return v, nil
}
