package tuning

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/ghostsock/ghostsock/internal/sockopt"
)

// checkPlatform reports what k asks for that this platform cannot apply.
func checkPlatform(k sockopt.Options) error {
	err := sockopt.Check(k)
	if unit, name := sockopt.UserTimeoutUnit(); name != "" && k.UserTimeout%unit != 0 {
		err = errors.Join(err, &FieldError{Field: "UserTimeout", Value: k.UserTimeout.String(),
			Limit: fmt.Sprintf("must be a whole number of %v on %s (%s)", unit, runtime.GOOS, name)})
	}
	return err
}

// get reads back what k.Set sets, as a Config.
func get(fd uintptr) (Config, error) {
	h, err := sockopt.Get(fd)
	if err != nil {
		return Config{}, err
	}
	var c Config
	c.UserTimeout = h.UserTimeout
	c.KeepAlive.Enable = h.KeepAlive
	c.KeepAlive.Idle = h.Idle
	c.KeepAlive.Interval = h.Interval
	c.KeepAlive.Count = h.Count
	if h.RTOMax != MaxRTOMax { // the kernel's own cap reads as 0, as Config says
		c.RTOMax = h.RTOMax
	}
	return c, nil
}
