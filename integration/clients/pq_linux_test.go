package clients

import (
	"context"
	"database/sql"
	"net"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/tuning"
)

func pqDB(t *testing.T, dsn string, dialer pq.Dialer) *sql.DB {
	t.Helper()
	connector, err := pq.NewConnector(dsn)
	require.NoError(t, err)
	if dialer != nil {
		connector.Dialer(dialer)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.PingContext(t.Context()))
	return db
}

// recordingPQDialer is a pq.Dialer over a dial function.
type recordingPQDialer struct{ recordingDialer }

func (d recordingPQDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.dial(ctx, network, address)
}

func (d recordingPQDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return d.dial(ctx, network, address)
}

func TestLibPQ(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	startPostgres(t, l)
	c, e := observed(kit(t))
	d := c.ConnDialer() // the README's line: connector.Dialer(c.ConnDialer())
	rec := &dialed{}
	db := pqDB(t, pgDSN(l), recordingPQDialer{recordingDialer{rec.wrap(d.DialContext)}})
	db.SetMaxOpenConns(1)
	settingsOnSocket(t, rec.last(t), c)
	prove(t, l, c, e, sqlCalls(db, "SELECT pg_sleep(600)", "SELECT length($1::text)"))
}

func TestLibPQStock(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	startPostgres(t, l)
	db := pqDB(t, pgDSN(l), nil)
	stockHangs(t, l, sqlCalls(db, "SELECT pg_sleep(600)", "").waiting, nil)
}

var _ pq.Dialer = (*tuning.ConnDialer)(nil) // the README's line compiles
