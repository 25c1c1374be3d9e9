package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// build compiles the entrepot binary once per test.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "entrepot")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestVersionAndBadConfiguration(t *testing.T) {
	bin := build(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "entrepot ") {
		t.Fatalf("version: %q %v", out, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--listen", "nope"}, "--listen"},
		{[]string{"serve", "--upstream", "docker.io"}, "--upstream"},
		{[]string{"serve", "--upstream", "x=ftp://host"}, "ftp://host"},
		{[]string{"serve", "--bogus"}, "bogus"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		cmd := exec.Command(bin, tc.args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: err %v, stderr %q; want exit 2 naming %q", tc.args, err, stderr.String(), tc.want)
		}
	}
}

// kill -9 in the middle of a fill leaves nothing that could be served; the
// next start removes the leftovers, and the blob then fills correctly.
func TestKillDuringFill(t *testing.T) {
	bin := build(t)
	blob := make([]byte, 8<<20)
	rand.Read(blob)
	d := digest.FromBytes(blob)
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		half := len(blob) / 2
		w.Write(blob[:half])
		w.(http.Flusher).Flush()
		<-release
		w.Write(blob[half:])
	}))
	defer origin.Close()

	data := t.TempDir()
	addr := freeAddr(t)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--listen", addr, "--admin-listen", "127.0.0.1:0", "--data", data, "--upstream", "docker.io="+origin.URL)
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		waitHTTP(t, "http://"+addr+"/v2/")
		return cmd
	}
	blobURL := "http://" + addr + "/v2/library/x/blobs/" + d.String()

	cmd := start()
	resp, err := http.Get(blobURL)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 1<<20)) // the fill is under way
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	resp.Body.Close()
	if n := files(t, filepath.Join(data, "blobs")); n != 0 {
		t.Fatalf("%d blob files after kill -9 mid-fill", n)
	}
	if n := files(t, filepath.Join(data, "tmp")); n == 0 {
		t.Fatalf("expected the interrupted fill's leftover in tmp/")
	}

	close(release) // from now on the origin sends whole blobs
	start()
	if n := files(t, filepath.Join(data, "tmp")); n != 0 {
		t.Fatalf("%d leftovers in tmp/ after restart", n)
	}
	resp, err = http.Get(blobURL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("pull after restart: %d bytes, %v", len(got), err)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	if !answers(url, 15*time.Second) {
		t.Fatalf("%s did not answer", url)
	}
}

// answers tells whether url answers 200 within d.
func answers(url string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func files(t *testing.T, root string) int {
	n := 0
	filepath.WalkDir(root, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// A second serve on a data directory in use exits 2 with a line naming the
// process that holds it, and leaves the first one's fills in tmp/ alone;
// the first goes on serving, its health checks answering.
func TestDataDirectoryIsLocked(t *testing.T) {
	bin := build(t)
	data := t.TempDir()
	addr := freeAddr(t)
	first := exec.Command(bin, "serve", "--listen", addr, "--admin-listen", "127.0.0.1:0", "--data", data, "--upstream", "docker.io=http://127.0.0.1:1")
	first.Stderr = io.Discard
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Process.Kill(); first.Wait() })
	waitHTTP(t, "http://"+addr+"/healthz")
	leftover := filepath.Join(data, "tmp", "fill-in-progress")
	if err := os.WriteFile(leftover, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	second := exec.Command(bin, "serve", "--listen", freeAddr(t), "--admin-listen", "127.0.0.1:0", "--data", data, "--upstream", "docker.io=http://127.0.0.1:1")
	var stderr bytes.Buffer
	second.Stderr = &stderr
	err := second.Run()
	ee, ok := err.(*exec.ExitError)
	if want := fmt.Sprintf("locked by process %d", first.Process.Pid); !ok || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), want) {
		t.Fatalf("second serve: %v, stderr %q; want exit 2 saying %q", err, stderr.String(), want)
	}
	if _, err := os.Stat(leftover); err != nil {
		t.Fatalf("the second serve touched the first one's tmp/: %v", err)
	}
	for _, path := range []string{"/healthz", "/readyz", "/v2/"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s on the first: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
}
