package registry_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/registry"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
)

// pushCache is a cache whose ghcr.io upstream, the origin target, takes
// pushes, and whose docker.io upstream is the origin source.
func pushCache(t *testing.T) (c *cacheServer, source, target *origin) {
	source, target = newOrigin(t), newOrigin(t)
	c = newCache(t, source, options{
		ttl:  time.Hour,
		urls: map[string]string{"docker.io": source.URL, "ghcr.io": target.URL},
		push: map[string]bool{"ghcr.io": true},
	})
	return c, source, target
}

func ref(t *testing.T, host, repo string) name.Reference {
	r, err := name.ParseReference(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A push through the cache reaches the upstream whole, and the next pull
// of the image from the cache asks the upstream nothing (write-through).
func TestPushThrough(t *testing.T) {
	c, _, target := pushCache(t)
	img, err := random.Image(256<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, c.host(), "ghcr.io/team/app:1"), img); err != nil {
		t.Fatalf("push through the cache: %v", err)
	}
	want, _ := img.Digest()
	got, err := remote.Image(ref(t, target.host(), "team/app:1"))
	if err != nil {
		t.Fatalf("the upstream lacks the pushed image: %v", err)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("upstream holds %s, want %s", d, want)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("the upstream's copy: %v", err)
	}

	target.reset()
	pulled, err := remote.Image(ref(t, c.host(), "ghcr.io/team/app:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d != want {
		t.Fatalf("pulled %s, want %s", d, want)
	}
	if n := target.total(); n != 0 {
		t.Fatalf("the pull after the push made %d upstream requests, want 0: %v", n, target.counts)
	}
}

// A client asks the cache whether the blobs of its image exist; the cache
// holds them from another upstream, so the client skips their upload. The
// manifest's PUT must not fail upstream for it: the cache pushes what the
// upstream lacks first.
func TestPushOfBlobsTheUpstreamLacks(t *testing.T) {
	c, source, target := pushCache(t)
	base, err := random.Image(128<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, source.host(), "library/base:1"), base); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref(t, c.host(), "docker.io/library/base:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(pulled); err != nil { // now cached, blobs included
		t.Fatal(err)
	}
	derived, err := mutate.Config(base, mutateConfig())
	if err != nil {
		t.Fatal(err)
	}
	before := target.count("PATCH uploads") + target.count("PUT uploads")
	if err := remote.Write(ref(t, c.host(), "ghcr.io/team/derived:1"), derived); err != nil {
		t.Fatalf("push of an image whose layers only the cache holds: %v", err)
	}
	got, err := remote.Image(ref(t, target.host(), "team/derived:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("the upstream's copy is not whole: %v", err)
	}
	if n := target.count("PATCH uploads") + target.count("PUT uploads") - before; n < 2 {
		t.Fatalf("%d upload requests reached the upstream; the layers the client skipped must have been sent by the cache", n)
	}
}

// mutateConfig gives an image a config of its own, keeping its layers.
func mutateConfig() v1.Config {
	return v1.Config{Env: []string{"DERIVED=1"}}
}

// A chunked upload (POST, PATCHes with Content-Range, a status GET, the
// PUT) goes through with the upstream's answers, Location rewritten into
// the cache; the blob is then served from the cache.
func TestChunkedUpload(t *testing.T) {
	c, _, target := pushCache(t)
	blob := make([]byte, 300<<10)
	rand.Read(blob)
	d := digest.FromBytes(blob)
	client := &http.Client{Timeout: 30 * time.Second}
	send := func(method, url string, body []byte, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := send(http.MethodPost, c.URL+"/v2/ghcr.io/team/chunks/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || !strings.HasPrefix(loc, "/v2/ghcr.io/team/chunks/blobs/uploads/") {
		t.Fatalf("POST: %s, Location %q; want 202 into the cache", resp.Status, loc)
	}
	if resp.Header.Get("Cache-Status") != "Entrepot; fwd=method; fwd-status=202" {
		t.Errorf("Cache-Status %q", resp.Header.Get("Cache-Status"))
	}
	half := len(blob) / 2
	resp = send(http.MethodPatch, c.URL+loc, blob[:half], "Content-Type", "application/octet-stream", "Content-Range", fmt.Sprintf("0-%d", half-1))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first PATCH: %s", resp.Status)
	}
	loc = resp.Header.Get("Location")
	// go-containerregistry's registry has no status GET (Distribution's,
	// in the e2e suite, does): what matters here is that it is forwarded.
	if send(http.MethodGet, c.URL+loc, nil); target.count("GET uploads") != 1 {
		t.Fatalf("the status GET was not forwarded: %v", target.counts)
	}
	resp = send(http.MethodPatch, c.URL+loc, blob[half:], "Content-Type", "application/octet-stream", "Content-Range", fmt.Sprintf("%d-%d", half, len(blob)-1))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("second PATCH: %s", resp.Status)
	}
	loc = resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp = send(http.MethodPut, c.URL+loc+sep+"digest="+d.String(), nil)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("PUT: %s, digest %q", resp.Status, resp.Header.Get("Docker-Content-Digest"))
	}
	target.reset()
	got, body := c.do(t, http.MethodGet, "/v2/ghcr.io/team/chunks/blobs/"+d.String())
	if got.StatusCode != 200 || !bytes.Equal(body, blob) || target.total() != 0 {
		t.Fatalf("GET of the pushed blob: %s, %d bytes, %d upstream requests; want it from the cache", got.Status, len(body), target.total())
	}
}

// An upload the client leaves mid-way stores nothing, and its spooled bytes
// go after a while.
func TestAbandonedUpload(t *testing.T) {
	defer registry.SetUploadIdle(200 * time.Millisecond)()
	dir := t.TempDir()
	source, target := newOrigin(t), newOrigin(t)
	c := newCache(t, source, options{dataDir: dir, urls: map[string]string{"ghcr.io": target.URL}, push: map[string]bool{"ghcr.io": true}})
	resp, _ := c.do(t, http.MethodPost, "/v2/ghcr.io/team/gone/blobs/uploads/")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatal(resp.Status)
	}
	req, _ := http.NewRequest(http.MethodPatch, c.URL+resp.Header.Get("Location"), bytes.NewReader(make([]byte, 64<<10)))
	patched, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	patched.Body.Close()
	if n := spooled(t, dir); n == 0 {
		t.Fatal("no spool file for the upload under way")
	}
	waitFor(t, "the abandoned upload's spool file removed", func() bool { return spooled(t, dir) == 0 })
	if n := blobFiles(t, dir); n != 0 {
		t.Fatalf("%d blobs stored from an upload never finished", n)
	}
}

// A push the upstream refuses reaches the client with the upstream's status
// and error, and stores nothing.
func TestPushRefusedUpstream(t *testing.T) {
	c, _, target := pushCache(t)
	target.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"errors":[{"code":"DENIED","message":"quota exceeded for team"}]}`)
			return true
		}
		return false
	})
	img, _ := random.Image(1024, 1)
	err := remote.Write(ref(t, c.host(), "ghcr.io/team/full:1"), img)
	if err == nil || !strings.Contains(err.Error(), "quota exceeded for team") || !strings.Contains(err.Error(), "DENIED") {
		t.Fatalf("push refused upstream: %v; want the upstream's DENIED and message", err)
	}
	target.setFault(nil)
	d, _ := img.Digest()
	resp, _ := c.do(t, http.MethodHead, "/v2/ghcr.io/team/full/manifests/"+d.String())
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD of the refused manifest: %s, want 404 (nothing stored)", resp.Status)
	}
}

// Without upstreams[].push, pushes are refused as before.
func TestPushOffAnswers405(t *testing.T) {
	c, _, _ := pushCache(t)
	resp, _ := c.do(t, http.MethodPost, "/v2/docker.io/library/x/blobs/uploads/")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST to an upstream without push: %s, want 405", resp.Status)
	}
}

func spooled(t *testing.T, dir string) int { return countFiles(t, filepath.Join(dir, "tmp")) }

func blobFiles(t *testing.T, dir string) int { return countFiles(t, filepath.Join(dir, "blobs")) }
