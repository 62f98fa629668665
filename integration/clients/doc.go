// Package clients proves the kit with the database, cache and messaging
// clients people use, against the real servers from Debian: pgx
// (pgxpool) and lib/pq against PostgreSQL 15, go-sql-driver/mysql against
// MariaDB 10.11, go-redis against redis-server 7.0 and nats.go against
// nats-server 2.9, each started by the test itself on the lab's server
// host.
//
// It is a module of its own so that none of these clients becomes a
// dependency of the kit. Run it from this directory, as CI does:
//
//	cd integration/clients && go test -race ./...
//
// It needs the lab's network namespaces (root, or user namespaces; the
// PostgreSQL tests need real root, to run the server as the postgres
// user) and the servers' programs: apt-get install postgresql
// redis-server nats-server mariadb-server (.ci/run installs them without
// starting their services).
package clients
