// Package clients proves the kit with the database, cache and messaging
// clients people use, against the real servers from Debian: pgx
// (pgxpool), lib/pq, go-redis and nats.go, each against PostgreSQL, Redis
// or the NATS server started by the test itself on the lab's server host.
//
// It is a module of its own so that none of these clients becomes a
// dependency of the kit. Run it from this directory, as CI does:
//
//	cd integration/clients && go test -race ./...
//
// It needs the lab's network namespaces (root, or user namespaces) and the
// servers' programs: apt-get install postgresql redis-server nats-server
// (.ci/run installs them without starting their services).
package clients
