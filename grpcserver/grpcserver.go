package grpcserver

import (
	"context"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ghostsock/ghostsock/internal/grpcping"
	"github.com/ghostsock/ghostsock/tuning"
)

// MinClientPingInterval is the enforcement policy's MinTime: clients that
// still ping (during a migration, or other languages' defaults) are
// accepted as long as they ping no more often than this. grpc-go, Java and
// C++ clients cannot ping more often than every 10 s, so none of them is
// sent GOAWAY too_many_pings; a ping flood still is.
const MinClientPingInterval = 5 * time.Second

// Listen announces on the local address with c's options on every accepted
// connection; see tuning.Config.Listen. Its connections are not guarded
// (c.NoGuard is set): HTTP/2 never lets the TCP window shut (see the
// package doc). They are *tuning.Conn, not *net.TCPConn, so grpc-go's own
// keepalive code, which sets TCP_USER_TIMEOUT on a *net.TCPConn, cannot
// replace c.UserTimeout whatever keepalive options the server is given.
// The listener keeps *net.TCPListener's File and SetDeadline.
func Listen(ctx context.Context, network, address string, c tuning.Config) (net.Listener, error) {
	c.NoGuard = true
	return c.Listen(ctx, network, address)
}

// WrapListener sets c's options on every connection ln accepts; see
// tuning.Config.WrapListener. Like Listen, it does not guard, and hands out
// *tuning.Conn. Put it beneath any wrapper of your own.
func WrapListener(ln net.Listener, c tuning.Config) net.Listener {
	c.NoGuard = true
	return c.WrapListener(ln)
}

// Options returns the server options to pass to grpc.NewServer with a
// listener from Listen or WrapListener (Settings{}.Options(c)): server
// pings off (keepalive Time infinite, so grpc-go sets no TCP_USER_TIMEOUT
// of its own), and clients that still ping are never sent GOAWAY
// too_many_pings (MinTime MinClientPingInterval, PermitWithoutStream).
// Keepalive options of your own (MaxConnectionAge, say) go in Settings:
// grpc-go keeps only the last KeepaliveParams. The options do not depend
// on c: detection lives in the listener, which validates c.
func Options(c tuning.Config) []grpc.ServerOption { return Settings{}.Options(c) }

// Settings are a server's own keepalive settings, merged with the kit's
// into one grpc.KeepaliveParams and one grpc.KeepaliveEnforcementPolicy
// option. The zero value is Options.
type Settings struct {
	// Keepalive is the server's own keepalive.ServerParameters.
	// MaxConnectionIdle, MaxConnectionAge and MaxConnectionAgeGrace are
	// kept as given, with grpc-go's meaning.
	//
	// Time and Timeout are the server pings the kit replaces: leave them
	// zero and the server sends none (Time infinite). Set, they are kept,
	// for a migration that wants pings for a while; the user timeout
	// stays c's even then, since the kit's connections are no
	// *net.TCPConn for grpc-go to set it on.
	Keepalive keepalive.ServerParameters

	// Enforcement, if set, is the policy the server enforces on client
	// pings, as given, in place of the kit's (MinTime
	// MinClientPingInterval, PermitWithoutStream). A stricter policy
	// sends GOAWAY too_many_pings to clients that ping more often.
	Enforcement *keepalive.EnforcementPolicy
}

// Options returns the server options for s: see Settings and the
// package-level Options (the Config does not change them).
func (s Settings) Options(tuning.Config) []grpc.ServerOption {
	kp, ep := s.merged()
	return []grpc.ServerOption{grpc.KeepaliveParams(kp), grpc.KeepaliveEnforcementPolicy(ep)}
}

// merged is what Options passes to grpc-go.
func (s Settings) merged() (keepalive.ServerParameters, keepalive.EnforcementPolicy) {
	kp := s.Keepalive
	if kp.Time == 0 {
		kp.Time = grpcping.Off
	}
	ep := keepalive.EnforcementPolicy{MinTime: MinClientPingInterval, PermitWithoutStream: true}
	if s.Enforcement != nil {
		ep = *s.Enforcement
	}
	return kp, ep
}
