// Package testenv runs the real servers that tests need beside the code
// under test (an S3-compatible server, Redis): it finds their binaries,
// starts them on loopback ports, waits until they answer, and stops them,
// by PID, when the test ends.
//
// A binary that is missing skips the test, unless ENTREPOT_REQUIRE_SERVERS
// is set (as in CI, whose script installs them): then it fails it.
package testenv

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary returns the path of the program name: the value of the
// environment variable env if set, else name on PATH. Without one, the
// test is skipped, or failed when ENTREPOT_REQUIRE_SERVERS is set; hint
// says how to install it.
func Binary(t testing.TB, name, env, hint string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	// Daemons (nginx) install to sbin, which a user's PATH may lack.
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p
		}
	}
	if os.Getenv("ENTREPOT_REQUIRE_SERVERS") != "" {
		t.Fatalf("%s not found (set %s or put it on PATH; %s)", name, env, hint)
	}
	t.Skipf("%s not found (set %s or put it on PATH; %s); ENTREPOT_REQUIRE_SERVERS makes this a failure", name, env, hint)
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a server started for a test.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // set once done is closed
}

// Start runs path with args (and env added to the test's environment) in
// its own process group, and waits up to 30 s for ready to succeed. The
// process is killed when the test ends; its output is logged if the test
// failed.
func Start(t testing.TB, path string, args, env []string, ready func() error) *Process {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	p := &Process{Name: path, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("output of %s:\n%s", path, out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ready()
		if err == nil {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready (%v):\n%s", path, p.err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30 s: %v\n%s", path, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the process (SIGKILL to its group) and waits for it to exit.
// Killing a process that has exited is not an error.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// PID is the process's id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output returns what the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// DialReady is a ready function that succeeds once addr accepts TCP
// connections.
func DialReady(addr string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// Addr is 127.0.0.1:port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		return len(p), nil // keep the first MiB
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
