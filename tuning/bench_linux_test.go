package tuning

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The cost the kit adds to dialing and accepting, over loopback: it should
// be the setsockopt calls and nothing else (no allocation). Run with
//
//	go test ./tuning -run '^$' -bench . -benchmem -count 10
//
// and compare the variants with benchstat -col /dialer (or /listener).

func BenchmarkDial(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and drop everything
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	for _, d := range []struct {
		name string
		d    *net.Dialer
	}{
		{"dialer=net", &net.Dialer{}}, // Go's default: keepalive on, 4 setsockopt calls
		// What the standard library allocates for any Control hook
		// (the RawConn, the network and address strings).
		{"dialer=net-empty-Control", &net.Dialer{KeepAlive: -1, Control: func(string, string, syscall.RawConn) error { return nil }}},
		{"dialer=ghostsock", budget5.Dialer()},
	} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, err := d.d.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

func BenchmarkAccept(b *testing.B) {
	ctx := context.Background()
	for _, l := range []struct {
		name   string
		listen func() (net.Listener, error)
	}{
		{"listener=net", func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }},
		{"listener=ghostsock-Listen", func() (net.Listener, error) { return budget5.Listen(ctx, "tcp", "127.0.0.1:0") }},
		{"listener=ghostsock-Listen-NoGuard", func() (net.Listener, error) {
			bare := budget5
			bare.NoGuard = true
			return bare.Listen(ctx, "tcp", "127.0.0.1:0")
		}},
		{"listener=ghostsock-WrapListener", func() (net.Listener, error) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			return budget5.WrapListener(ln), err
		}},
	} {
		b.Run(l.name, func(b *testing.B) {
			ln, err := l.listen()
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			addr := ln.Addr().String()
			// The dials come from another goroutine, so that the
			// benchmark's allocations are the accept path's.
			dials := make(chan struct{})
			go func() {
				d := &net.Dialer{KeepAlive: -1}
				for range dials {
					if c, err := d.Dial("tcp", addr); err == nil {
						c.Close()
					}
				}
			}()
			defer close(dials)
			b.ReportAllocs()
			for b.Loop() {
				dials <- struct{}{}
				c, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkApply is the floor: the setsockopt calls themselves, on an open
// connection.
func BenchmarkApply(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := budget5.Apply(c); err != nil {
			b.Fatal(err)
		}
	}
}

// drainedConn dials a loopback connection whose far end reads and drops
// everything, guarded or not, and returns it with a wait for the drain to
// end once it is closed.
func drainedConn(b *testing.B, guarded bool) (net.Conn, func()) {
	b.Helper()
	bare := budget5
	bare.NoGuard = true // the far end only reads
	ln, err := bare.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		if c, err := ln.Accept(); err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := budget5.Dialer().Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	if guarded {
		if c, err = budget5.Guard(c); err != nil {
			b.Fatal(err)
		}
	}
	return c, func() { c.Close(); <-drained; ln.Close() }
}

func connName(guarded bool) string {
	if guarded {
		return "conn=ghostsock-Guard"
	}
	return "conn=net"
}

// BenchmarkWrite is the guard's cost on the write path: 16 KiB writes to a
// loopback connection drained by a reader, the plain *net.TCPConn against
// the same connection guarded (two atomic additions per write, and a
// TCP_INFO read per tick while data is queued).
func BenchmarkWrite(b *testing.B) {
	for _, guarded := range []bool{false, true} {
		b.Run(connName(guarded), func(b *testing.B) {
			c, done := drainedConn(b, guarded)
			defer done()
			buf := make([]byte, 16<<10)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSendfile sends a 4 MiB file with io.Copy(conn, file), as
// http.ServeContent does: the plain *net.TCPConn sends it with sendfile
// from *os.File's WriteTo, the guarded one from its ReadFrom, through the
// guard (the guarded SyscallConn hides the poll descriptor). Both are
// zero-copy; strace -c on this benchmark counts the sendfile calls.
func BenchmarkSendfile(b *testing.B) {
	const size = 4 << 20
	path := filepath.Join(b.TempDir(), "body")
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, guarded := range []bool{false, true} {
		b.Run(connName(guarded), func(b *testing.B) {
			c, done := drainedConn(b, guarded)
			defer done()
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(c, f); err != nil || n != size {
					b.Fatalf("sent %d: %v", n, err)
				}
			}
		})
	}
}

// BenchmarkSpliceProxy copies 4 MiB from a loopback socket that a writer
// keeps full into the connection with io.CopyN, as a proxy does: the
// plain *net.TCPConn splices it in one ReadFrom, the guarded one in
// chunks, each no larger than the source holds (sockopt.SourceWait).
func BenchmarkSpliceProxy(b *testing.B) {
	const size = 4 << 20
	for _, guarded := range []bool{false, true} {
		b.Run(connName(guarded), func(b *testing.B) {
			c, done := drainedConn(b, guarded)
			defer done()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			feeder, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			src, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			go func() { // keeps the source full until it is closed
				buf := make([]byte, 64<<10)
				for {
					if _, err := feeder.Write(buf); err != nil {
						return
					}
				}
			}()
			defer feeder.Close()
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if n, err := io.CopyN(c, src, size); err != nil || n != size {
					b.Fatalf("copied %d: %v", n, err)
				}
			}
		})
	}
}
