package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// shutdownDeadline bounds every wait of these tests. It is generous on
// purpose: it only turns a hang into a failure, it measures nothing.
const shutdownDeadline = 30 * time.Second

// stallingOrigin serves blob: its first half at once, the rest once release
// is closed. A request whose client (Entrepot's fill) gives up ends there.
func stallingOrigin(t *testing.T, blob []byte, release <-chan struct{}) *httptest.Server {
	d := digest.FromBytes(blob)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		if r.Method == http.MethodHead {
			return
		}
		half := len(blob) / 2
		w.Write(blob[:half])
		w.(http.Flusher).Flush()
		select {
		case <-release:
			w.Write(blob[half:])
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(origin.Close) // registered before release's cleanup, so it runs after it
	return origin
}

// drainingServer is an entrepot serve that the test signals and watches
// exit.
type drainingServer struct {
	cmd    *exec.Cmd
	addr   string
	data   string
	stderr bytes.Buffer  // written by cmd until exited is closed; read only after
	exited chan struct{} // closed once cmd.Wait has returned
}

// startDraining starts entrepot serve with JSON logs, the origin as
// docker.io and the extra YAML lines given (e.g. shutdown_grace).
func startDraining(t *testing.T, bin, origin, extra string) *drainingServer {
	s := &drainingServer{addr: freeAddr(t), data: t.TempDir(), exited: make(chan struct{})}
	conf := filepath.Join(t.TempDir(), "entrepot.yaml")
	yaml := fmt.Sprintf("listen: %s\ndata: %s\nupstreams:\n  - name: docker.io\n    url: %s\nadmin:\n  listen: 127.0.0.1:0\nlog:\n  format: json\n%s",
		s.addr, s.data, origin, extra)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "serve", "--config", conf)
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// One goroutine waits; the cleanup and the test only read exited.
	go func() { s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.exited })
	waitHTTP(t, "http://"+s.addr+"/v2/")
	return s
}

// waitExit waits for the process to exit after a signal and returns its
// exit code.
func (s *drainingServer) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-s.exited:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(shutdownDeadline):
		t.Fatalf("entrepot still running %v after SIGTERM", shutdownDeadline)
		return -1
	}
}

// logLines decodes the process's log, once it has exited: one JSON object
// a line. A line that is not JSON (net/http's own error log, a panic) is
// returned with level "UNSTRUCTURED".
func (s *drainingServer) logLines() []map[string]any {
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			rec = map[string]any{"level": "UNSTRUCTURED", "msg": line}
		}
		lines = append(lines, rec)
	}
	return lines
}

// logged tells whether a line at level has a message starting with msg.
func logged(lines []map[string]any, level, msg string) bool {
	for _, rec := range lines {
		if m, _ := rec["msg"].(string); rec["level"] == level && strings.HasPrefix(m, msg) {
			return true
		}
	}
	return false
}

// startPull GETs the blob through s on a connection of its own and returns
// once the first MiB has arrived: the fill is under way and the origin
// stalls mid-blob.
func startPull(t *testing.T, s *drainingServer, d digest.Digest) (*http.Response, []byte) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + s.addr + "/v2/library/x/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob: %s", resp.Status)
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatalf("first MiB of the blob: %v", err)
	}
	return resp, head
}

// blobFiles lists the files of data/blobs named after d, and everything in
// data/tmp.
func blobFiles(data string, d digest.Digest) (blobs, tmp []string) {
	filepath.WalkDir(filepath.Join(data, "blobs"), func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.Contains(e.Name(), d.Encoded()) {
			blobs = append(blobs, path)
		}
		return nil
	})
	entries, _ := os.ReadDir(filepath.Join(data, "tmp"))
	for _, e := range entries {
		tmp = append(tmp, e.Name())
	}
	return blobs, tmp
}

// signalAndProbeReadyz sends SIGTERM and probes /readyz until the
// listener refuses connections, checking that readiness, once lost, is not
// regained: on new connections the answers go from 200 (the signal not yet
// handled) to 503 to a refused connection, never back; and a connection
// opened before the signal, whose request ends only once the listener is
// closed, gets no 200 either.
//
// The listener stays open for a while after the signal (drainDelay), so
// that load balancers see the 503 before connections are refused: the
// probes must see it. A request read once srv.Shutdown has begun is
// dropped unanswered by net/http, which counts as not ready too.
func signalAndProbeReadyz(t *testing.T, s *drainingServer) {
	t.Helper()
	early, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	early.SetDeadline(time.Now().Add(shutdownDeadline))
	if _, err := io.WriteString(early, "GET /readyz HTTP/1.1\r\nHost: entrepot\r\n"); err != nil {
		t.Fatal(err)
	}
	// The server accepts connections in order: once a later one is
	// answered, early is accepted and waits for the rest of its request.
	waitHTTP(t, "http://"+s.addr+"/healthz")

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: shutdownDeadline}
	var seen []int
	for stop := time.Now().Add(shutdownDeadline); ; time.Sleep(10 * time.Millisecond) {
		resp, err := probe.Get("http://" + s.addr + "/readyz")
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		if err == nil {
			resp.Body.Close()
			seen = append(seen, resp.StatusCode)
		} else {
			seen = append(seen, 0) // accepted, then closed unanswered
		}
		if n := len(seen); n > 1 && seen[n-1] == http.StatusOK && seen[n-2] != http.StatusOK {
			t.Fatalf("GET /readyz after SIGTERM, on new connections: %v; ready again after it was not", seen)
		}
		if c := seen[len(seen)-1]; c != http.StatusOK && c != http.StatusServiceUnavailable && c != 0 {
			t.Fatalf("GET /readyz after SIGTERM: %d", c)
		}
		if time.Now().After(stop) {
			t.Fatalf("the listener still accepts connections %v after SIGTERM (/readyz: %v)", shutdownDeadline, seen)
		}
	}

	if !slices.Contains(seen, http.StatusServiceUnavailable) {
		t.Fatalf("GET /readyz after SIGTERM: %v; never 503 before the listener closed", seen)
	}
	if _, err := io.WriteString(early, "\r\n"); err != nil {
		return // closed by the server: not ready
	}
	resp, err := http.ReadResponse(bufio.NewReader(early), nil)
	if err != nil {
		return // closed unanswered: not ready
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz on a connection opened before SIGTERM, asked once draining: %s, want 503 or no answer", resp.Status)
	}
}

// Graceful shutdown completes an in-flight pull: on SIGTERM /readyz stops
// answering 200 and the listener refuses new connections, while a pull
// whose origin stalls mid-blob goes on; once the origin sends the rest, the
// client gets the whole blob, the fill is committed, and the process exits
// 0 having logged no error.
func TestShutdownCompletesInFlightPull(t *testing.T) {
	bin := build(t)
	blob := make([]byte, 8<<20)
	rand.Read(blob)
	d := digest.FromBytes(blob)
	release := make(chan struct{})
	origin := stallingOrigin(t, blob, release)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	s := startDraining(t, bin, origin.URL, "") // shutdown_grace: the default 30s

	resp, head := startPull(t, s, d)
	signalAndProbeReadyz(t, s)
	select {
	case <-s.exited:
		t.Fatalf("entrepot exited with a pull in flight: %v\n%s", s.cmd.ProcessState, s.stderr.String())
	default:
	}

	close(release)
	released = true
	rest, err := io.ReadAll(resp.Body)
	got := append(head, rest...)
	if err != nil || digest.FromBytes(got) != d {
		t.Fatalf("in-flight pull: %d of %d bytes, digest %s, %v; want the whole blob %s", len(got), len(blob), digest.FromBytes(got), err, d)
	}

	if code := s.waitExit(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, s.stderr.String())
	}
	lines := s.logLines()
	for _, rec := range lines {
		if rec["level"] == "ERROR" || rec["level"] == "UNSTRUCTURED" {
			t.Errorf("logged %v", rec)
		}
	}
	if !logged(lines, "INFO", "shutting down") || logged(lines, "WARN", "shutdown grace over") {
		t.Errorf("want a shutdown within its grace; the log:\n%s", s.stderr.String())
	}
	blobs, tmp := blobFiles(s.data, d)
	if len(blobs) != 1 || len(tmp) != 0 {
		t.Fatalf("after exit: blobs %v, tmp %v; want the fill committed, tmp/ empty", blobs, tmp)
	}
	if stored, err := os.ReadFile(blobs[0]); err != nil || !bytes.Equal(stored, blob) {
		t.Fatalf("stored blob: %d bytes, %v", len(stored), err)
	}
}

// Past shutdown_grace a pull still running is cut: with an origin that
// never sends the rest, the process exits 0 all the same, the client's body
// ends short with an error (never as if whole), and the fill leaves
// nothing behind, neither a blob nor a file in tmp/.
func TestShutdownGraceCutsStalledPull(t *testing.T) {
	bin := build(t)
	blob := make([]byte, 8<<20)
	rand.Read(blob)
	d := digest.FromBytes(blob)
	release := make(chan struct{}) // closed only by the cleanup
	origin := stallingOrigin(t, blob, release)
	t.Cleanup(func() { close(release) })
	s := startDraining(t, bin, origin.URL, "shutdown_grace: 1s\n")

	resp, head := startPull(t, s, d)
	type result struct {
		n   int
		err error
	}
	read := make(chan result, 1)
	go func() {
		rest, err := io.ReadAll(resp.Body)
		read <- result{len(head) + len(rest), err}
	}()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	if code := s.waitExit(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM past the grace, want 0\n%s", code, s.stderr.String())
	}
	select {
	case r := <-read:
		if r.err == nil || r.n >= len(blob) {
			t.Fatalf("cut pull: %d of %d bytes, err %v; want a short body and an error", r.n, len(blob), r.err)
		}
	case <-time.After(shutdownDeadline):
		t.Fatalf("the client's body did not end %v after entrepot exited", shutdownDeadline)
	}
	if lines := s.logLines(); !logged(lines, "WARN", "shutdown grace over") {
		t.Errorf("no warning that the grace ran out; the log:\n%s", s.stderr.String())
	}
	if blobs, tmp := blobFiles(s.data, d); len(blobs) != 0 || len(tmp) != 0 {
		t.Fatalf("after exit: blobs %v, tmp %v; want neither", blobs, tmp)
	}
}
