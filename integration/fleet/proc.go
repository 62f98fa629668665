package fleet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// A Proc is this program run again as a child process in some role,
// driven by lines on its standard input and answering with lines (JSON, by
// the convention of its callers) on its standard output.
type Proc struct {
	Name  string
	Cmd   *exec.Cmd
	Lines <-chan []byte // closed when the child's output ends
	in    io.WriteCloser
}

// Start runs this executable with args; files become its descriptors 3,
// 4 and so on (a listener made on the lab's server host, for example).
func Start(name string, args []string, files ...*os.File) (*Proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	lines := make(chan []byte, 16)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- append([]byte(nil), s.Bytes()...)
		}
	}()
	return &Proc{Name: name, Cmd: cmd, Lines: lines, in: in}, nil
}

// Send writes one command line to the child.
func (p *Proc) Send(cmd string) error {
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	return nil
}

// Stop sends "quit", closes the child's input and waits for it to end,
// killing it after a grace period.
func (p *Proc) Stop() {
	p.Send("quit")
	p.in.Close()
	done := make(chan struct{})
	go func() { p.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.Cmd.Process.Kill()
		<-done
	}
}

// DialReady makes n channels to addr, each its own TCP connection, with
// the options opts returns for channel i, and makes one RPC on each, 64 at
// a time, so that every channel is READY when it returns.
func DialReady(addr string, n int, opts func(i int) []grpc.DialOption) ([]*grpc.ClientConn, error) {
	ccs := make([]*grpc.ClientConn, n)
	sem := make(chan struct{}, 64)
	errc := make(chan error, n)
	for i := range ccs {
		cc, err := grpc.NewClient("passthrough:///"+addr, opts(i)...)
		if err != nil {
			return nil, err
		}
		ccs[i] = cc
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := testpb.NewTestServiceClient(cc).UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 1})
			errc <- err
		}()
	}
	for range ccs {
		if err := <-errc; err != nil {
			return nil, fmt.Errorf("first RPCs: %w", err)
		}
	}
	return ccs, nil
}
