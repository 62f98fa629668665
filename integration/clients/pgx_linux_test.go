package clients

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/integration/lab"
)

func pgxPool(t *testing.T, dsn string, edit func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	edit(cfg)
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pool.Ping(t.Context()))
	return pool
}

func pgDSN(l *lab.Lab) string {
	return fmt.Sprintf("postgres://postgres@%s:5432/postgres?sslmode=disable", l.ServerAddr)
}

func TestPgx(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	startPostgres(t, l)
	c, e := observed(kit(t))
	rec := &dialed{}
	pool := pgxPool(t, pgDSN(l), func(cfg *pgxpool.Config) {
		cfg.ConnConfig.DialFunc = c.DialFunc(nil) // the README's line
		cfg.ConnConfig.DialFunc = rec.wrap(cfg.ConnConfig.DialFunc)
	})
	settingsOnSocket(t, rec.last(t), c)
	exec := func(ctx context.Context, query string, args ...any) error {
		_, err := pool.Exec(ctx, query, args...)
		return err
	}
	prove(t, l, c, e, calls{
		waiting: func(ctx context.Context) error { return exec(ctx, "SELECT pg_sleep(600)") },
		sending: func(ctx context.Context) error { return exec(ctx, "SELECT length($1::text)", big) },
		next:    func(ctx context.Context) error { return exec(ctx, "SELECT 1") },
	})
}

func TestPgxStock(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	startPostgres(t, l)
	pool := pgxPool(t, pgDSN(l), func(*pgxpool.Config) {})
	stockHangs(t, l, func(ctx context.Context) error { _, err := pool.Exec(ctx, "SELECT pg_sleep(600)"); return err }, nil)
}
