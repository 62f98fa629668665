//go:build !linux && !darwin && !freebsd && !windows

package sockopt

import "time"

// Other systems: no option is known to work, so Check reports every
// Options unsupported before any socket is touched.
var platform = platformOptions{userTimeoutUnit: time.Millisecond}

const platformInherits = false

func setInt(uintptr, *sockopt, int) error { return Unsupported("setsockopt") }

func getInt(uintptr, *sockopt) (int, error) { return 0, Unsupported("getsockopt") }
