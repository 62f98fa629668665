package clients

import (
	"context"
	"database/sql"
	"net"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
)

func mysqlDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	require.NoError(t, db.PingContext(t.Context()))
	return db
}

func TestMySQL(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	addr := startMariaDB(t, l).addr
	c, e := observed(kit(t))
	rec := &dialed{}
	// The README's lines, the dial function recorded.
	dial := rec.wrap(c.DialFunc(nil))
	mysql.RegisterDialContext("ghostsock", func(ctx context.Context, addr string) (net.Conn, error) { return dial(ctx, "tcp", addr) })
	db := mysqlDB(t, "root@ghostsock("+addr+")/")
	settingsOnSocket(t, rec.last(t), c)
	prove(t, l, c, e, sqlCalls(db, "SELECT SLEEP(600)", "SELECT LENGTH(?)"))
}

func TestMySQLStock(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	addr := startMariaDB(t, l).addr
	db := mysqlDB(t, "root@tcp("+addr+")/")
	stockHangs(t, l, sqlCalls(db, "SELECT SLEEP(600)", "").waiting, nil)
}
