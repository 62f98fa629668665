package clients

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ghostsock/ghostsock/integration/lab"
)

// server is a real server process the test started on the lab's server
// host, stopped (by its own process id) when the test ends.
type server struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	addr string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// requireTool returns the path of a server program (from Debian package
// pkg), and fails the test if it is missing: a missing program is no
// permission error, so it is never a skip. .ci/run installs them.
func requireTool(t *testing.T, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (apt-get install -y %s; .ci/run installs it): %v", path, pkg, err)
	}
	return path
}

// start runs cmd on the server host (the child inherits the namespace of
// the thread that starts it) and waits until addr accepts connections.
// stop is the signal that ends it at once (PostgreSQL's SIGTERM waits for
// its sessions, the vanished clients' among them: it takes SIGINT).
func start(t *testing.T, l *lab.Lab, name string, cmd *exec.Cmd, addr string, stop syscall.Signal) *server {
	t.Helper()
	s := &server{name: name, cmd: cmd, out: &lockedBuffer{}, addr: addr}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.WaitDelay = 5 * time.Second // a child still holding its output does not hold Wait
	var err error
	l.InServer(func() { err = cmd.Start() })
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(stop)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return s
		}
		select {
		case <-exited:
			t.Fatalf("%s exited: %v\n%s", name, cmd.ProcessState, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not accept on %s within 30s: %v\n%s", name, addr, err, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const pgBin = "/usr/lib/postgresql/15/bin"

// realRoot says whether this process is root of the machine, not of a user
// namespace that maps only itself (as lab.Enter makes for a normal user).
func realRoot() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && strings.Fields(string(b))[2] == "4294967295"
}

// startPostgres makes a database cluster in a directory of its own and
// runs PostgreSQL 15 on the server host, trusting every connection. As
// root it runs as the postgres user, which PostgreSQL requires.
func startPostgres(t *testing.T, l *lab.Lab) *server {
	t.Helper()
	initdb := requireTool(t, filepath.Join(pgBin, "initdb"), "postgresql")
	postgres := requireTool(t, filepath.Join(pgBin, "postgres"), "postgresql")
	dir, err := os.MkdirTemp("", "ghostsock-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 && !realRoot() {
		// Root in a user namespace of the lab's own: the postgres user is
		// not mapped, and PostgreSQL refuses to run as root.
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL needs real root (to run as the postgres user) under CI")
		}
		t.Skip("PostgreSQL needs real root here: run the suite as root (sudo), not in a user namespace")
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("the postgres user (made by the postgresql package): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	init := exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		// The client host's addresses: its own and those AddClientAddrs
		// gives.
		_, err = fmt.Fprintf(hba, "host all all %s trust\n", netip.PrefixFrom(l.ClientAddr, 24).Masked())
		hba.Close()
	}
	if err != nil {
		t.Fatalf("pg_hba.conf: %v", err)
	}
	addr := net.JoinHostPort(l.ServerAddr.String(), "5432")
	cmd := exec.Command(postgres, "-D", data, "-c", "listen_addresses="+l.ServerAddr.String(), "-p", "5432",
		"-c", "unix_socket_directories="+dir, "-c", "fsync=off", "-c", "max_connections=50")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	s := start(t, l, "postgres", cmd, addr, syscall.SIGINT)
	// It accepts before it serves ("the database system is starting up").
	isready := filepath.Join(pgBin, "pg_isready")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := exec.Command(isready, "-q", "-h", l.ServerAddr.String(), "-p", "5432").Run()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres not ready within 30s: %v\n%s", err, s.out.String())
		}
	}
}

// startRedis runs redis-server 7 on the server host, with no persistence.
func startRedis(t *testing.T, l *lab.Lab) *server {
	t.Helper()
	bin := requireTool(t, "/usr/bin/redis-server", "redis-server")
	addr := net.JoinHostPort(l.ServerAddr.String(), "6379")
	cmd := exec.Command(bin, "--bind", l.ServerAddr.String(), "--port", "6379", "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--daemonize", "no", "--dir", t.TempDir())
	return start(t, l, "redis-server", cmd, addr, syscall.SIGTERM)
}

// startNATS runs nats-server 2.9 on the server host.
func startNATS(t *testing.T, l *lab.Lab) *server {
	t.Helper()
	bin := requireTool(t, "/usr/sbin/nats-server", "nats-server")
	addr := net.JoinHostPort(l.ServerAddr.String(), "4222")
	cmd := exec.Command(bin, "-a", l.ServerAddr.String(), "-p", "4222")
	return start(t, l, "nats-server", cmd, addr, syscall.SIGTERM)
}

// startMariaDB runs MariaDB 10.11 on the server host, in a directory of
// its own, with grant tables skipped (every user may connect).
func startMariaDB(t *testing.T, l *lab.Lab) *server {
	t.Helper()
	install := requireTool(t, "/usr/bin/mariadb-install-db", "mariadb-server")
	bin := requireTool(t, "/usr/sbin/mariadbd", "mariadb-server")
	dir, err := os.MkdirTemp("", "ghostsock-mariadb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	// A tmpdir of its own: mariadbd deletes the temporary tables it finds
	// in its tmpdir as it starts, so instances sharing /tmp delete each
	// other's (mariadb-install-db then fails: Unknown table
	// 'mysql.tmp_user_sys').
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(install, "--no-defaults", "--user="+me.Username, "--datadir="+data, "--tmpdir="+tmp, "--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	addr := net.JoinHostPort(l.ServerAddr.String(), "3306")
	cmd := exec.Command(bin, "--no-defaults", "--user="+me.Username, "--datadir="+data, "--tmpdir="+tmp, "--bind-address="+l.ServerAddr.String(),
		"--port=3306", "--socket="+filepath.Join(dir, "mysqld.sock"), "--pid-file="+filepath.Join(dir, "mysqld.pid"),
		"--skip-grant-tables", "--innodb-buffer-pool-size=16M", "--max-allowed-packet=64M", "--skip-log-bin")
	return start(t, l, "mariadbd", cmd, addr, syscall.SIGTERM)
}

func (s *server) String() string { return fmt.Sprintf("%s on %s", s.name, s.addr) }
