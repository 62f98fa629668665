package clients

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/integration/lab"
	"github.com/ghostsock/ghostsock/internal/census"
)

// ghostscanBin builds ghostscan (a module of its own) into a directory every user may read, so that a
// test can also run it as a normal user.
func ghostscanBin(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ghostscan-bin")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "ghostscan")
	out, err := exec.Command("go", "build", "-C", "../cmd/ghostscan", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build -C ../cmd/ghostscan: %s", out)
	return bin
}

// scanRun is one ghostscan run.
type scanRun struct {
	stdout, stderr string
	code           int
}

// nobody runs ghostscan as a normal user.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534}

// ghostscanAs runs ghostscan on the server host (the child inherits the
// namespace of the thread that starts it), as cred (nil: this process's
// user).
func ghostscanAs(t *testing.T, l *lab.Lab, bin string, cred *syscall.Credential, args ...string) scanRun {
	t.Helper()
	return ghostscanIn(t, l.InServer, bin, cred, args...)
}

// onClient runs fn on the client host: this process's own namespace.
func onClient(fn func()) { fn() }

// ghostscanIn runs ghostscan on the host in runs functions on
// (l.InServer, or onClient), as cred (nil: this process's user).
func ghostscanIn(t *testing.T, in func(func()), bin string, cred *syscall.Credential, args ...string) scanRun {
	t.Helper()
	var out, errOut bytes.Buffer
	var err error
	in(func() {
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr, cmd.Dir = &out, &errOut, "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		err = cmd.Run()
	})
	r := scanRun{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	t.Logf("ghostscan %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// decode reads a -json run's output into v.
func (r scanRun) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal([]byte(r.stdout), v), "%s", r.stdout)
}

// scan takes a census of the server host from this process, reading every
// socket's options.
func scan(t *testing.T, l *lab.Lab, port int) *census.Census {
	t.Helper()
	var c *census.Census
	var err error
	l.InServer(func() { c, err = census.Scan(census.Options{Filter: census.Filter{Port: port}, Settings: true}) })
	require.NoError(t, err)
	return c
}

// connFrom is the server's connection whose peer is a, or nil.
func (c0 *censusView) connFrom(a netip.AddrPort) *census.Conn {
	for _, conn := range c0.Connections {
		if conn.Remote == a {
			return conn
		}
	}
	return nil
}

// censusView adds look-ups to a census.
type censusView struct{ *census.Census }

func view(c *census.Census) *censusView { return &censusView{c} }

// goneWithin polls the server host until no connection has peer a, and
// returns how long that took, failing the test past limit.
func goneWithin(t *testing.T, l *lab.Lab, port int, a netip.AddrPort, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if view(scan(t, l, port)).connFrom(a) == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("the server's connection from %v was still there %v later", a, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sockets counts the sockets process pid holds.
func sockets(t *testing.T, pid int) int {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		if link, _ := os.Readlink(dir + e.Name()); strings.HasPrefix(link, "socket:") {
			n++
		}
	}
	return n
}

// echoServer is an asyncio echo server in Python 3: a TCP server no one
// here wrote, which sets no socket option of its own but TCP_NODELAY.
const echoServer = `
import asyncio, sys

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)

async def main():
    server = await asyncio.get_running_loop().create_server(Echo, sys.argv[1], int(sys.argv[2]))
    print("serving", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
`

const echoPort = 7000

// startEcho runs the Python echo server on the server host.
func startEcho(t *testing.T, l *lab.Lab) *server { return startEchoOn(t, l, echoPort) }

// startEchoOn runs the Python echo server on the server host's port.
func startEchoOn(t *testing.T, l *lab.Lab, port int) *server {
	t.Helper()
	py := requireTool(t, "/usr/bin/python3", "python3")
	script := filepath.Join(t.TempDir(), "echo.py")
	require.NoError(t, os.WriteFile(script, []byte(echoServer), 0o644))
	return start(t, l, "python3 echo", exec.Command(py, "-u", script, l.ServerAddr.String(), strconv.Itoa(port)),
		l.ServerAddrPort(port), syscall.SIGTERM)
}

// dialFrom dials the echo server from client address a (invalid: the
// client's own), stock: no option of the kit, keepalive off.
func dialFrom(t *testing.T, l *lab.Lab, a netip.Addr, port int) net.Conn {
	t.Helper()
	d := &net.Dialer{KeepAlive: -1, Timeout: 5 * time.Second}
	if a.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: a.AsSlice()}
	}
	conn, err := d.Dial("tcp", l.ServerAddrPort(port))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// ping sends a line and reads it back.
func ping(conn net.Conn) error {
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetWriteDeadline(time.Time{})
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		return err
	}
	return readPing(conn)
}

// readPing reads the echo of one "ping\n".
func readPing(conn net.Conn) error {
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	b := make([]byte, 5)
	if _, err := io.ReadFull(conn, b); err != nil {
		return err
	}
	if string(b) != "ping\n" {
		return fmt.Errorf("echoed %q", b)
	}
	return nil
}

// streamer writes a counting pattern to an echo server every period and
// checks every byte that comes back.
type streamer struct {
	conn      net.Conn
	mu        sync.Mutex
	sent, got int64
	err       error
	stop      chan struct{}
	done      sync.WaitGroup
}

func stream(conn net.Conn, period time.Duration) *streamer {
	s := &streamer{conn: conn, stop: make(chan struct{})}
	s.done.Add(1)
	go func() { // writer
		defer s.done.Done()
		buf := make([]byte, 1024)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(period):
			}
			s.mu.Lock()
			n := s.sent
			s.mu.Unlock()
			for i := range buf {
				buf[i] = byte((n + int64(i)) % 251)
			}
			if _, err := conn.Write(buf); err != nil {
				s.fail(err)
				return
			}
			s.mu.Lock()
			s.sent += int64(len(buf))
			s.mu.Unlock()
		}
	}()
	go func() { // reader
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			s.mu.Lock()
			for i := range n {
				if buf[i] != byte((s.got+int64(i))%251) && s.err == nil {
					s.err = fmt.Errorf("byte %d came back as %d", s.got+int64(i), buf[i])
				}
			}
			s.got += int64(n)
			s.mu.Unlock()
			if err != nil {
				s.fail(err)
				return
			}
		}
	}()
	return s
}

func (s *streamer) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stop:
		return // stopped: the error is the test's own close
	default:
	}
	if s.err == nil {
		s.err = err
	}
}

// finish stops writing and checks that every byte sent came back, right.
func (s *streamer) finish(t *testing.T, what string) {
	t.Helper()
	close(s.stop)
	s.done.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		sent, got, err := s.sent, s.got, s.err
		s.mu.Unlock()
		if err != nil || got == sent || time.Now().After(deadline) {
			assert.NoError(t, err, "%s: every byte echoed right", what)
			assert.Equal(t, sent, got, "%s: every byte came back", what)
			assert.Greater(t, sent, int64(0), "%s: it sent", what)
			t.Logf("%s: %d bytes sent and echoed", what, sent)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
