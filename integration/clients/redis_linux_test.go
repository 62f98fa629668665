package clients

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func redisClient(t *testing.T, opts *redis.Options) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	require.NoError(t, rdb.Ping(t.Context()).Err())
	return rdb
}

func TestGoRedis(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	addr := startRedis(t, l).addr
	c, e := observed(kit(t))
	rec := &dialed{}
	// The README's line. MaxRetries -1: go-redis retries a command that
	// met a network error (3 times by default), each retry on a new
	// connection, whose dial to a vanished host goes on for the user
	// timeout, 5 times over (DialerRetries): the kernel's verdict would
	// reach the caller a minute later (TestGoRedisRetries).
	opts := &redis.Options{Addr: addr, Dialer: c.DialFunc(nil), MaxRetries: -1}
	opts.Dialer = rec.wrap(opts.Dialer)
	rdb := redisClient(t, opts)
	settingsOnSocket(t, rec.last(t), c)
	prove(t, l, c, e, calls{
		waiting: func(ctx context.Context) error { return rdb.BLPop(ctx, 0, "queue").Err() },
		sending: func(ctx context.Context) error { return rdb.Set(ctx, "big", big, 0).Err() },
		next:    func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
	})
}

// TestGoRedisRetries: the kit's dialer alone, with go-redis's default
// retries, leaves a BLPOP waiting past the bound: the reap is found in
// time, and the retries redial the vanished host.
func TestGoRedisRetries(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	addr := startRedis(t, l).addr
	c := kit(t)
	rdb := redisClient(t, &redis.Options{Addr: addr, Dialer: c.DialFunc(nil)})
	idle, _ := c.Bounds()
	stillWaiting(t, l, "default retries", 2*idle, func(ctx context.Context) error { return rdb.BLPop(ctx, 0, "queue").Err() }, func() { rdb.Close() })
}

func TestGoRedisStock(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	addr := startRedis(t, l).addr
	rdb := redisClient(t, &redis.Options{Addr: addr})
	stockHangs(t, l, func(ctx context.Context) error { return rdb.BLPop(ctx, 0, "queue").Err() }, func() { rdb.Close() })
}
