package lab

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// TCP states as tcp_states.h numbers them (TCP_INFO's tcpi_state).
const (
	StateEstablished = 1
	StateClose       = 7
)

// TCPInfo reads TCP_INFO from the socket behind rc.
func TCPInfo(rc syscall.RawConn) (*unix.TCPInfo, error) {
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) { info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if serr != nil {
		return nil, os.NewSyscallError("getsockopt TCP_INFO", serr)
	}
	return info, nil
}

// StateName names a tcpi_state value.
func StateName(s uint8) string {
	names := []string{"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprint(s)
}
