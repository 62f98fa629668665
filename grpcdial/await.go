package grpcdial

import (
	"context"
	"net"
	"sync"
	"weak"

	"google.golang.org/grpc/stats"

	"github.com/ghostsock/ghostsock/tuning"
)

// awaiter is the stats.Handler a Lean channel gets: every RPC in flight
// holds a tuning.Conn.Awaiting mark on the connection that carries it, so
// that the client probes while it waits for a response or a stream's next
// message, and sends nothing while the channel idles.
//
// grpc-go tells a client's stats handlers which connection an RPC went out
// on in its OutHeader (its addresses), and when the attempt ends (End).
// The channel's dialer records each connection it made, weakly: one whose
// handshake fails never reaches grpc-go's stats and is only dropped. At
// TagConn, grpc-go's transport is up, and the connection moves to conns,
// until its ConnEnd.
type awaiter struct {
	dialed sync.Map // connKey -> weak.Pointer[tuning.Conn]: made, not yet a transport
	conns  sync.Map // connKey -> *tuning.Conn: a transport's
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
			a.made(conn)
		}
		return conn, err
	}
}

// made records conn, if the kit made it, for the RPCs it will carry; it
// also forgets the connections made before that were dropped unused.
func (a *awaiter) made(conn net.Conn) {
	a.dialed.Range(func(k, v any) bool {
		if v.(weak.Pointer[tuning.Conn]).Value() == nil {
			a.dialed.CompareAndDelete(k, v)
		}
		return true
	})
	for c := conn; c != nil; {
		if kc, ok := c.(*tuning.Conn); ok {
			if k, ok := keyOf(conn.LocalAddr(), conn.RemoteAddr()); ok {
				a.dialed.Store(k, weak.Make(kc))
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

// connTag is what TagConn leaves in a transport's context for its ConnEnd.
type connTag struct {
	key  connKey
	conn *tuning.Conn
}

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
		m.release() // the attempt's End, or a second header of one attempt
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
	k, ok := keyOf(info.LocalAddr, info.RemoteAddr)
	if !ok {
		return ctx
	}
	v, ok := a.dialed.LoadAndDelete(k)
	if !ok {
		return ctx
	}
	conn := v.(weak.Pointer[tuning.Conn]).Value()
	if conn == nil {
		return ctx
	}
	a.conns.Store(k, conn)
	return context.WithValue(ctx, connTagKey{}, connTag{k, conn})
}

func (a *awaiter) HandleConn(ctx context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnEnd); ok {
		if t, ok := ctx.Value(connTagKey{}).(connTag); ok {
			// Not a newer connection that reuses the addresses.
			a.conns.CompareAndDelete(t.key, t.conn)
		}
	}
}
