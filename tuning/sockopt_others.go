//go:build !linux && !darwin && !freebsd && !windows

package tuning

import "time"

// Other systems: no option is known to work, so every Config is reported
// unsupported by checkPlatform before any socket is touched.
var platform = platformOptions{userTimeoutUnit: time.Millisecond}

func setInt(uintptr, *sockopt, int) error { return unsupported("setsockopt") }

func getInt(uintptr, *sockopt) (int, error) { return 0, unsupported("getsockopt") }
