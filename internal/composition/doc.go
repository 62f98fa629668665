// Package composition holds the composition matrix: every way a service
// combines the kit's entry points with each other, with wrappers of its
// own (TLS, a connection limit, a metrics conn) and with its existing
// gRPC and net/http settings, each case either working fully or refused
// with an error that names the fix. It has no code of its own: see
// composition_test.go. The cases run on loopback.
package composition
