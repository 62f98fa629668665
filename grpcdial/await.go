package grpcdial

import (
	"context"
	"net"
	"sync"

	"google.golang.org/grpc/stats"

	"github.com/ghostsock/ghostsock/tuning"
)

// awaiter is the stats.Handler a Lean channel gets: every RPC in flight
// holds a tuning.Conn.Awaiting mark on the connection that carries it, so
// that the client probes while it waits for a response or a stream's next
// message, and sends nothing while the channel idles.
//
// grpc-go tells a client's stats handlers which connection an RPC went out
// on in its OutHeader (LocalAddr), and when the RPC ends (End); the
// channel's dialer records each connection it made by its local address,
// and ConnEnd forgets it.
type awaiter struct {
	conns sync.Map // connKey -> *tuning.Conn
}

// connKey names a connection by both its addresses, as grpc-go reports
// them (a local port may serve several remote addresses).
type connKey struct{ local, remote string }

func keyOf(local, remote net.Addr) (connKey, bool) {
	if local == nil || remote == nil {
		return connKey{}, false
	}
	return connKey{local.String(), remote.String()}, true
}

// record wraps dial so that a records what it makes; a nil a records
// nothing and returns dial itself.
func (a *awaiter) record(dial tuning.DialContextFunc) tuning.DialContextFunc {
	if a == nil {
		return dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err == nil {
			a.dialed(conn)
		}
		return conn, err
	}
}

// dialed records conn, if the kit made it, for the RPCs it will carry.
func (a *awaiter) dialed(conn net.Conn) {
	for c := conn; c != nil; {
		if kc, ok := c.(*tuning.Conn); ok {
			if k, ok := keyOf(conn.LocalAddr(), conn.RemoteAddr()); ok {
				a.conns.Store(k, kc)
			}
			return
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		c = nc.NetConn()
	}
}

type (
	rpcKey     struct{}
	connTagKey struct{}
)

// rpcMark is an RPC's mark on its connection, taken at each attempt's
// headers and released at its end.
type rpcMark struct {
	mu      sync.Mutex
	release func()
}

func (m *rpcMark) set(release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.release != nil {
		m.release() // a retry: the earlier attempt's connection is done with
	}
	m.release = release
}

func (a *awaiter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, rpcKey{}, &rpcMark{})
}

func (a *awaiter) HandleRPC(ctx context.Context, s stats.RPCStats) {
	m, _ := ctx.Value(rpcKey{}).(*rpcMark)
	if m == nil {
		return
	}
	switch s := s.(type) {
	case *stats.OutHeader:
		k, ok := keyOf(s.LocalAddr, s.RemoteAddr)
		if !ok {
			return
		}
		if c, ok := a.conns.Load(k); ok {
			if release, err := c.(*tuning.Conn).Awaiting(); err == nil {
				m.set(release)
			}
			// An error is the socket's, which the RPC meets too.
		}
	case *stats.End:
		m.set(nil)
	}
}

func (a *awaiter) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	if k, ok := keyOf(info.LocalAddr, info.RemoteAddr); ok {
		return context.WithValue(ctx, connTagKey{}, k)
	}
	return ctx
}

func (a *awaiter) HandleConn(ctx context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnEnd); ok {
		if k, ok := ctx.Value(connTagKey{}).(connKey); ok {
			a.conns.Delete(k)
		}
	}
}
