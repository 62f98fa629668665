// Package grpcping holds what packages grpcdial and grpcserver share about
// grpc-go's keepalive pings. It imports only the standard library.
package grpcping

import (
	"math"
	"time"
)

// Off is grpc-go's own "infinity" for a keepalive Time, client's or
// server's: with it grpc-go sends no keepalive pings and leaves
// TCP_USER_TIMEOUT as the socket holds it (internal/transport's
// http2_client.go and http2_server.go).
const Off = time.Duration(math.MaxInt64)
