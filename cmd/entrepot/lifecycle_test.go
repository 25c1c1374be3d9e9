package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// origin is a real registry (go-containerregistry's) that counts the GETs
// it answers.
type origin struct {
	*httptest.Server
	mu   sync.Mutex // protects gets
	gets int
}

func newOrigin(t *testing.T) *origin {
	o := &origin{}
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && (strings.Contains(r.URL.Path, "/manifests/") || strings.Contains(r.URL.Path, "/blobs/")) {
			o.mu.Lock()
			o.gets++
			o.mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) getCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gets
}

// push writes n random images of two 150 KiB layers to the origin, tagged
// img0, img1, ...
func (o *origin) push(t *testing.T, n int) {
	for i := range n {
		img, err := random.Image(150<<10, 2)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference(fmt.Sprintf("%s/library/app:img%d", strings.TrimPrefix(o.URL, "http://"), i))
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
}

// server is a running entrepot serve.
type server struct {
	cmd         *exec.Cmd
	addr, admin string
	data        string
	log         *lockedBuffer
}

const testToken = "s3cret-admin-token"

// serving finds the addresses in the server's "entrepot serving" line.
var serving = regexp.MustCompile(`msg="entrepot serving" .* listen=(\S+) admin=(\S+)`)

// startServer starts entrepot serve on data with the YAML storage section
// given, and an admin token. The server binds port 0 and the test reads
// the ports it got from its log: a port found free here could be taken
// before the server binds it, even by its own admin listener, and the
// server would exit.
func startServer(t *testing.T, bin, data, upstream, storage string) *server {
	s := &server{data: data, log: &lockedBuffer{}}
	conf := filepath.Join(t.TempDir(), "entrepot.yaml")
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata: %s\nupstreams:\n  - name: docker.io\n    url: %s\n    ttl: 0s\nadmin:\n  listen: 127.0.0.1:0\n  token_env: TEST_ADMIN_TOKEN\n%s",
		data, upstream, storage)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "serve", "--config", conf)
	s.cmd.Env = append(os.Environ(), "TEST_ADMIN_TOKEN="+testToken)
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	for deadline := time.Now().Add(15 * time.Second); s.addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := serving.FindStringSubmatch(s.log.String()); m != nil {
			s.addr, s.admin = m[1], m[2]
		}
	}
	if s.addr == "" || !answers("http://"+s.addr+"/v2/", 15*time.Second) {
		s.kill() // its log is whole once it has exited
		t.Fatalf("entrepot did not answer (%v); its log:\n%s", s.cmd.ProcessState, s.log)
	}
	return s
}

func (s *server) kill() { s.stop(syscall.SIGKILL) }

// stop signals the server and waits for it to exit.
func (s *server) stop(sig syscall.Signal) {
	s.cmd.Process.Signal(sig)
	s.cmd.Wait()
}

// pull pulls and validates (every digest, every layer) an image through
// the server.
func (s *server) pull(tag string) error {
	ref, err := name.ParseReference(s.addr+"/docker.io/library/app:"+tag, name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(ref)
	if err != nil {
		return err
	}
	return validate.Image(img)
}

// list asks the admin API what the cache holds, with the token.
func (s *server) list(t *testing.T) []cache.Repository {
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.admin+"/api/v1/images", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/images: %v %v", resp, err)
	}
	defer resp.Body.Close()
	var repos []cache.Repository
	if err := json.NewDecoder(resp.Body).Decode(&repos); err != nil {
		t.Fatal(err)
	}
	return repos
}

// heldTags lists the tags whose image the store holds whole.
func heldTags(repos []cache.Repository) []string {
	var tags []string
	for _, r := range repos {
		for _, img := range r.Tags {
			if img.Held && img.Missing == 0 {
				tags = append(tags, img.Tag)
			}
		}
	}
	return tags
}

// blobBytes is the size of the data directory's blobs, measured from
// outside.
func blobBytes(t *testing.T, data string) int64 {
	var n int64
	filepath.WalkDir(filepath.Join(data, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// verifyBlobs checks that every stored blob hashes to its name.
func verifyBlobs(t *testing.T, data string) int {
	n := 0
	filepath.WalkDir(filepath.Join(data, "blobs", "sha256"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.Name() {
			t.Errorf("blob %s does not hash to its name", path)
		}
		n++
		return nil
	})
	return n
}

// Real pulls past storage.max_size: the store settles under the high
// watermark (measured from outside), every image it still holds pulls with
// no upstream request, and an evicted one is fetched again.
func TestBoundedStore(t *testing.T) {
	bin := build(t)
	o := newOrigin(t)
	o.push(t, 10) // about 3 MiB
	data := t.TempDir()
	const maxSize = 2 << 20
	s := startServer(t, bin, data, o.URL, "storage:\n  max_size: 2MiB\n")
	for i := range 10 {
		if err := s.pull(fmt.Sprintf("img%d", i)); err != nil {
			t.Fatalf("pull img%d: %v", i, err)
		}
	}
	// Sweeps bring the content under the high watermark (down to the low
	// one, unless what is left was pulled while they ran); wait until no
	// sweep is under way: the size holds still for a second.
	deadline := time.Now().Add(30 * time.Second)
	for last := int64(-1); time.Now().Before(deadline); time.Sleep(time.Second) {
		n := blobBytes(t, data)
		if n <= maxSize*95/100 && n == last {
			break
		}
		last = n
	}
	if n := blobBytes(t, data); n > maxSize*95/100 || n < maxSize/2 {
		t.Fatalf("blobs take %d bytes; want at most the high watermark %d, and not emptied", n, maxSize*95/100)
	}
	held := heldTags(s.list(t))
	if len(held) < 3 || len(held) > 8 {
		t.Fatalf("held tags %v after eviction", held)
	}
	gets := o.getCount()
	for _, tag := range held {
		if err := s.pull(tag); err != nil {
			t.Fatalf("pull of held %s: %v", tag, err)
		}
	}
	if n := o.getCount() - gets; n != 0 {
		t.Fatalf("pulls of held images made %d upstream GETs", n)
	}
	if heldSet := strings.Join(held, " ") + " "; strings.Contains(heldSet, "img0 ") {
		t.Fatalf("img0, the least recently pulled, is still held: %v", held)
	}
	if err := s.pull("img0"); err != nil {
		t.Fatal(err)
	}
	if o.getCount() == gets {
		t.Fatal("an evicted image was not fetched again")
	}
}

// The admin API refuses a request without the token or with a wrong one,
// and changes nothing; the CLI with the token lists, purges, freezes.
func TestAdminAPI(t *testing.T) {
	bin := build(t)
	o := newOrigin(t)
	o.push(t, 2)
	s := startServer(t, bin, t.TempDir(), o.URL, "")
	if err := s.pull("img0"); err != nil {
		t.Fatal(err)
	}
	// The pull's last blob may be committed just after its last byte.
	eventually(t, "img0 held", func() bool { return slices.Equal(heldTags(s.list(t)), []string{"img0"}) })
	for _, auth := range []string{"", "Bearer wrong", "Basic " + testToken, "Bearer " + testToken + "x"} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.admin+"/api/v1/purge", strings.NewReader(`{"image":"docker.io/library/app:img0"}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("purge with %q: %d, want 401 with a challenge", auth, resp.StatusCode)
		}
	}
	if held := heldTags(s.list(t)); len(held) != 1 || held[0] != "img0" {
		t.Fatalf("after refused purges: held %v", held)
	}
	run := func(token string, args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{args[0], "--admin", "http://" + s.admin}, args[1:]...)...)
		cmd.Env = append(os.Environ(), "ENTREPOT_ADMIN_TOKEN="+token)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Run()
		return out.String(), cmd.ProcessState.ExitCode()
	}
	if out, code := run("wrong", "ls"); code != 1 || !strings.Contains(out, "ENTREPOT_ADMIN_TOKEN") {
		t.Fatalf("ls with a wrong token: exit %d, %q", code, out)
	}
	if out, code := run(testToken, "ls"); code != 0 || !strings.Contains(out, "docker.io/library/app") || !strings.Contains(out, "img0") {
		t.Fatalf("ls: exit %d, %q", code, out)
	}
	if out, code := run(testToken, "warm", "docker.io/library/app:img*"); code != 0 || !strings.Contains(out, "img1") {
		t.Fatalf("warm: exit %d, %q", code, out)
	}
	if out, code := run(testToken, "freeze", "docker.io/library/app:img1"); code != 0 || !strings.Contains(out, "frozen") {
		t.Fatalf("freeze: exit %d, %q", code, out)
	}
	if out, code := run(testToken, "ls", "--json"); code != 0 || !strings.Contains(out, `"frozen": true`) {
		t.Fatalf("ls --json: exit %d, %q", code, out)
	}
	if out, code := run(testToken, "purge", "docker.io/library/app:img0"); code != 0 || !strings.Contains(out, "purged") {
		t.Fatalf("purge: exit %d, %q", code, out)
	}
	if out, code := run(testToken, "purge", "docker.io/library/app:img0"); code != 1 || !strings.Contains(out, "nothing") {
		t.Fatalf("purge again: exit %d, %q", code, out)
	}
	if out, code := run(testToken, "warm", "docker.io/library/nope:1"); code != 1 || !strings.Contains(out, "nope") {
		t.Fatalf("warm of a missing image: exit %d, %q", code, out)
	}
	if held := heldTags(s.list(t)); len(held) != 1 || held[0] != "img1" {
		t.Fatalf("after purge: held %v", held)
	}
}

// kill -9 at any moment of an eviction leaves a store whose every blob is
// whole and correct, and whose every held image pulls with the upstream
// gone.
func TestKillDuringEviction(t *testing.T) {
	bin := build(t)
	o := newOrigin(t)
	o.push(t, 12)
	data := t.TempDir()
	s := startServer(t, bin, data, o.URL, "")
	for i := range 12 {
		if err := s.pull(fmt.Sprintf("img%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	s.stop(syscall.SIGTERM) // its fills committed, its pull times written
	before := blobBytes(t, data)
	// Restart with a smaller bound each time: eviction begins at once;
	// kill it at different moments.
	for i, wait := range []time.Duration{0, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
		s = startServer(t, bin, data, o.URL, fmt.Sprintf("storage:\n  max_size: %dKiB\n", 3000-i*500))
		time.Sleep(wait)
		s.kill()
	}
	if after := blobBytes(t, data); after >= before {
		t.Fatalf("no eviction ran: %d bytes before, %d after", before, after)
	}
	if verifyBlobs(t, data) == 0 {
		t.Fatal("no blobs left to verify")
	}
	o.Close() // from now on, only what the store holds can be served
	s = startServer(t, bin, data, o.URL, "")
	held := heldTags(s.list(t))
	if len(held) == 0 {
		t.Fatal("nothing held")
	}
	for _, tag := range held {
		if err := s.pull(tag); err != nil {
			t.Errorf("held image %s does not pull whole with the upstream gone: %v", tag, err)
		}
	}
}
