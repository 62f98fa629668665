package tuning

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateRejects(t *testing.T) {
	valid := Config{UserTimeout: 4 * time.Second, KeepAlive: net.KeepAliveConfig{Enable: true, Idle: 2 * time.Second, Interval: time.Second, Count: 2}}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
		limit string
	}{
		{"negative user timeout", func(c *Config) { c.UserTimeout = -time.Second }, "UserTimeout", "negative"},
		{"user timeout -1 is not a sentinel", func(c *Config) { c.UserTimeout = -1 }, "UserTimeout", "negative"},
		{"sub-millisecond user timeout", func(c *Config) { c.UserTimeout = 1500 * time.Microsecond }, "UserTimeout", "milliseconds"},
		{"user timeout past int32 ms", func(c *Config) { c.UserTimeout = MaxUserTimeout + time.Millisecond }, "UserTimeout", "at most"},
		{"negative idle", func(c *Config) { c.KeepAlive.Idle = -time.Second }, "KeepAlive.Idle", "negative"},
		{"fractional idle", func(c *Config) { c.KeepAlive.Idle = 1500 * time.Millisecond }, "KeepAlive.Idle", "whole number of seconds"},
		{"idle past 32767 s", func(c *Config) { c.KeepAlive.Idle = MaxKeepAliveIdle + time.Second }, "KeepAlive.Idle", "at most"},
		{"negative interval", func(c *Config) { c.KeepAlive.Interval = -2 }, "KeepAlive.Interval", "negative"},
		{"fractional interval", func(c *Config) { c.KeepAlive.Interval = time.Millisecond }, "KeepAlive.Interval", "whole number of seconds"},
		{"interval past 32767 s", func(c *Config) { c.KeepAlive.Interval = 32768 * time.Second }, "KeepAlive.Interval", "at most"},
		{"count -2", func(c *Config) { c.KeepAlive.Count = -2 }, "KeepAlive.Count", "1 to 127"},
		{"count 128", func(c *Config) { c.KeepAlive.Count = 128 }, "KeepAlive.Count", "at most 127"},
		{"bad even with keepalive off", func(c *Config) { c.KeepAlive.Enable = false; c.KeepAlive.Count = 1000 }, "KeepAlive.Count", "at most 127"},
		{"RTO cap below the kernel's 1 s", func(c *Config) { c.RTOMax = 999 * time.Millisecond }, "RTOMax", "1s to 2m0s"},
		{"RTO cap past 120 s (120,001 ms is EINVAL)", func(c *Config) { c.RTOMax = 120001 * time.Millisecond }, "RTOMax", "1s to 2m0s"},
		{"RTO cap in microseconds", func(c *Config) { c.RTOMax = 1500500 * time.Microsecond }, "RTOMax", "milliseconds"},
		{"negative stall timeout", func(c *Config) { c.StallTimeout = -time.Second }, "StallTimeout", "negative"},
		{"stall timeout under the user timeout", func(c *Config) { c.StallTimeout = 3 * time.Second }, "StallTimeout", "at least UserTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.edit(&c)
			err := c.Validate()
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.field, fe.Field)
			assert.Contains(t, fe.Limit, tc.limit)
			assert.Contains(t, err.Error(), tc.field)

			// Every entry point reports the same error before touching a socket.
			assert.ErrorIs(t, c.Control("tcp", "127.0.0.1:1", nil), ErrInvalidConfig)
			assert.ErrorIs(t, c.Apply(nil), ErrInvalidConfig)
			_, err = c.Listen(t.Context(), "tcp", "127.0.0.1:0")
			assert.ErrorIs(t, err, ErrInvalidConfig)
			_, err = c.Dialer().Dial("tcp", "127.0.0.1:1")
			assert.ErrorIs(t, err, ErrInvalidConfig)
			_, err = c.WrapListener(nil).Accept()
			assert.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	c := Config{UserTimeout: -1, KeepAlive: net.KeepAliveConfig{Idle: -5, Interval: -5, Count: 500}}
	err := c.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		require.True(t, errors.As(e, &fe))
		fields = append(fields, fe.Field)
	}
	assert.Equal(t, []string{"UserTimeout", "KeepAlive.Idle", "KeepAlive.Interval", "KeepAlive.Count", "KeepAlive.Enable"}, fields)
}

// A Config that can never find an idle peer, or that the default entry
// points could not guard, is refused by Validate itself, so that every
// entry point accepts what Validate accepts.
func TestValidateRefusesSilentTraps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     Config
		field string
		fix   string
	}{
		{"hand-filled, keepalive forgotten", Config{UserTimeout: 10 * time.Second}, "KeepAlive.Enable", "IdleUnwatched"},
		{"the zero Config", Config{}, "KeepAlive.Enable", "IdleUnwatched"},
		{"too short to guard", Config{UserTimeout: 500 * time.Millisecond, KeepAlive: net.KeepAliveConfig{Enable: true}}, "UserTimeout", "NoGuard"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fe *FieldError
			require.ErrorAs(t, tc.c.Validate(), &fe)
			assert.Equal(t, tc.field, fe.Field)
			assert.Contains(t, fe.Limit, tc.fix)
		})
	}
	lean := Config{UserTimeout: 10 * time.Second, IdleUnwatched: true}
	assert.NoError(t, lean.Validate(), "keepalive off, chosen")
	c, err := ForBudget(10 * time.Second)
	require.NoError(t, err)
	assert.NoError(t, c.Lean().Validate(), "Lean chooses it")
	assert.True(t, c.Lean().IdleUnwatched)
	short := Config{UserTimeout: 500 * time.Millisecond, KeepAlive: net.KeepAliveConfig{Enable: true}, NoGuard: true}
	assert.NoError(t, short.Validate(), "NoGuard: no guard, no limit")
}

func TestValidateAccepts(t *testing.T) {
	for _, c := range []Config{
		{IdleUnwatched: true},
		{UserTimeout: MaxUserTimeout, IdleUnwatched: true},
		{UserTimeout: time.Millisecond, IdleUnwatched: true, NoGuard: true},
		{KeepAlive: net.KeepAliveConfig{Enable: true}},
		{KeepAlive: net.KeepAliveConfig{Enable: true, Idle: Unchanged, Interval: Unchanged, Count: Unchanged}},
		{KeepAlive: net.KeepAliveConfig{Enable: true, Idle: MaxKeepAliveIdle, Interval: MaxKeepAliveInterval, Count: MaxKeepAliveCount}},
		{KeepAlive: net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 1}},
	} {
		assert.NoError(t, c.Validate(), "%+v", c)
	}
}
