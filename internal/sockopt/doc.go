// Package sockopt is the kit's raw socket layer: it sets and reads the TCP
// options ghostsock uses (tcp(7): TCP_USER_TIMEOUT, SO_KEEPALIVE and its
// timings, TCP_RTO_MAX_MS), in the kernel's units, from one table per OS,
// and decodes TCP_INFO once for every reader (package tuning and
// internal/census). Control is the one RawConn helper.
//
// It imports the standard library and golang.org/x/sys only; it knows
// nothing of tuning's Config. An option a platform lacks is an error
// wrapping errors.ErrUnsupported that names GOOS/GOARCH.
package sockopt
