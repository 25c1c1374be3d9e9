package registry_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// push writes a random image to the origin as repo:tag and returns it.
func push(t *testing.T, o *origin, repoTag string, layerSize int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(layerSize, layers)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(o.host()+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return img
}

// pushIndex writes a two-platform index (linux/amd64, linux/arm64).
func pushIndex(t *testing.T, o *origin, repoTag string) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	ref, _ := name.ParseReference(o.host()+"/"+repoTag, name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// A real client (go-containerregistry's remote) pulls whole images through
// each of the three routes, and every byte checks out against its digest.
func TestPullThroughEveryRoute(t *testing.T) {
	o := newOrigin(t)
	app := push(t, o, "team/app:1.2", 4096, 3)
	nginx := push(t, o, "library/nginx:latest", 4096, 2)
	c := newCache(t, o, options{ttl: time.Hour})

	for _, tc := range []struct {
		name, ref string
		want      v1.Image
	}{
		{"path prefix", c.host() + "/ghcr.io/team/app:1.2", app},
		{"path prefix with Docker Hub library rule", c.host() + "/docker.io/nginx:latest", nginx},
		{"default upstream (registry-mirrors)", c.host() + "/library/nginx:latest", nginx},
		{"default upstream adds library/", c.host() + "/nginx:latest", nginx},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := name.ParseReference(tc.ref, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			img, err := remote.Image(ref)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := digestOf(t, img), digestOf(t, tc.want); got != want {
				t.Fatalf("digest = %s, want %s", got, want)
			}
			if err := validate.Image(img); err != nil {
				t.Fatalf("validate: %v", err)
			}
		})
	}
}

// containerd's mirror requests carry ?ns=<registry>; the upstream is the one
// with that name or URL host.
func TestNamespaceParameter(t *testing.T) {
	o := newOrigin(t)
	app := push(t, o, "team/app:1.2", 1024, 1)
	c := newCache(t, o, options{ttl: time.Hour})
	o.reset()
	for _, ns := range []string{"ghcr.io", o.host()} {
		resp, _ := c.do(t, "HEAD", "/v2/team/app/manifests/1.2?ns="+ns)
		if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != digestOf(t, app) {
			t.Fatalf("ns=%s: %d %q", ns, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
		}
	}
	resp, body := c.do(t, "GET", "/v2/team/app/manifests/1.2?ns=quay.io")
	if resp.StatusCode != 404 || !strings.Contains(string(body), "NAME_UNKNOWN") || !strings.Contains(string(body), "docker.io, ghcr.io") {
		t.Fatalf("unknown ns: %d %s", resp.StatusCode, body)
	}
	if o.count("GET manifests")+o.count("HEAD manifests") != 2 {
		t.Fatalf("origin manifest requests = %v", o.counts)
	}
}

// 50 clients ask for one cold blob at once, most of them while the single
// upstream download is under way: one upstream GET, 50 correct bodies.
func TestConcurrentColdBlobIsFetchedOnce(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/big:1", 8<<20, 1)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	blob := readAll(t, layers[0])
	c := newCache(t, o, options{ttl: time.Hour})

	// Hold the upstream's answer mid-body until every client is in.
	release := make(chan struct{})
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "GET" || endpoint(r.URL.Path) != "blobs" {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		w.Write(blob[:len(blob)/2])
		w.(http.Flusher).Flush()
		<-release
		w.Write(blob[len(blob)/2:])
		return true
	})
	const clients = 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(c.URL + "/v2/library/big/blobs/" + d.String())
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := bytesCopy(h, resp)
			if err != nil || n != int64(len(blob)) || fmt.Sprintf("sha256:%x", h.Sum(nil)) != d.String() {
				errs <- fmt.Errorf("status %d, %d bytes, err %v", resp.StatusCode, n, err)
			}
		}()
	}
	waitFor(t, "every client to start or join the fill", func() bool {
		s := &c.cache.Stats
		return s.BlobMisses.Load()+s.BlobJoins.Load() == clients
	})
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := o.count("GET blobs"); n != 1 {
		t.Fatalf("upstream blob GETs = %d, want 1", n)
	}
	t.Logf("50 concurrent cold pulls: %d upstream blob GET, %d joins", o.count("GET blobs"), c.cache.Stats.BlobJoins.Load())
}

// Within its TTL a cached tag costs no upstream request; after it (TTL 0:
// every pull), only HEADs; a pull by digest, none.
func TestTagRevalidation(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/nginx:1", 1024, 1)
	want := digestOf(t, img)

	for _, tc := range []struct {
		name      string
		ttl       time.Duration
		wantHEADs int
	}{
		{"within TTL", time.Hour, 0},
		{"TTL 0 revalidates every pull with a HEAD", 0, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t, o, options{ttl: tc.ttl})
			c.do(t, "GET", "/v2/nginx/manifests/1")
			o.reset()
			for range 10 {
				resp, _ := c.do(t, "GET", "/v2/nginx/manifests/1")
				if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != 200 || got != want {
					t.Fatalf("GET: %d %s", resp.StatusCode, got)
				}
			}
			if got := o.count("HEAD manifests"); got != tc.wantHEADs || o.total() != tc.wantHEADs {
				t.Fatalf("upstream requests = %v, want %d HEADs and nothing else", o.counts, tc.wantHEADs)
			}
			o.reset()
			for range 10 {
				resp, _ := c.do(t, "GET", "/v2/nginx/manifests/"+want)
				if resp.StatusCode != 200 {
					t.Fatalf("GET by digest: %d", resp.StatusCode)
				}
			}
			if o.total() != 0 {
				t.Fatalf("pulls by digest reached the upstream: %v", o.counts)
			}
		})
	}
}

// A tag that moves upstream is seen at the next revalidation, which GETs
// only the new manifest.
func TestTagMoves(t *testing.T) {
	o := newOrigin(t)
	push(t, o, "library/app:stable", 1024, 1)
	c := newCache(t, o, options{ttl: 0})
	c.do(t, "GET", "/v2/library/app/manifests/stable")
	moved := push(t, o, "library/app:stable", 1024, 1)
	o.reset()
	resp, _ := c.do(t, "GET", "/v2/library/app/manifests/stable")
	if got := resp.Header.Get("Docker-Content-Digest"); got != digestOf(t, moved) {
		t.Fatalf("digest after move = %s, want %s", got, digestOf(t, moved))
	}
	if o.count("HEAD manifests") != 1 || o.count("GET manifests") != 1 {
		t.Fatalf("upstream requests = %v, want 1 HEAD and 1 GET", o.counts)
	}
}

// A client's HEAD of a tag never seen is one HEAD upstream, and fetches
// nothing (update checkers HEAD every tag they watch); its GET is one GET
// of the tag, with no HEAD before it.
func TestNewTagHeadAndGet(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/redis:7", 1024, 1)
	c := newCache(t, o, options{ttl: time.Hour})
	o.reset()
	resp, _ := c.do(t, "HEAD", "/v2/redis/manifests/7")
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != digestOf(t, img) {
		t.Fatalf("HEAD: %d, digest %q", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
	}
	if o.count("HEAD manifests") != 1 || o.count("GET manifests") != 0 || o.count("GET blobs") != 0 {
		t.Fatalf("upstream requests after a HEAD = %v, want 1 HEAD", o.counts)
	}
	push(t, o, "library/redis:8", 1024, 1)
	o.reset()
	if resp, _ := c.do(t, "GET", "/v2/redis/manifests/8"); resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	if o.count("HEAD manifests") != 0 || o.count("GET manifests") != 1 {
		t.Fatalf("upstream requests after a GET = %v, want 1 GET", o.counts)
	}
}

// Many clients asking for one tag at once cause one revalidation.
func TestConcurrentTagRequestsRevalidateOnce(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/redis:7", 1024, 1)
	c := newCache(t, o, options{ttl: time.Hour})
	o.reset()
	release := make(chan struct{})
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if endpoint(r.URL.Path) == "manifests" {
			<-release
		}
		return false
	})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(c.URL + "/v2/redis/manifests/7")
			if err != nil || resp.Header.Get("Docker-Content-Digest") != digestOf(t, img) {
				t.Errorf("GET: %v", err)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}()
	}
	// A tag never seen before: one GET of the tag, no HEAD.
	waitFor(t, "the revalidation to reach the upstream", func() bool { return o.count("GET manifests") == 1 })
	close(release)
	wg.Wait()
	if o.count("HEAD manifests") != 0 || o.count("GET manifests") != 1 {
		t.Fatalf("upstream requests = %v, want 1 GET", o.counts)
	}
}

func readAll(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func bytesCopy(w interface{ Write([]byte) (int, error) }, resp *http.Response) (int64, error) {
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := resp.Body.Read(buf)
		w.Write(buf[:k])
		n += int64(k)
		if err != nil {
			if err.Error() == "EOF" {
				return n, nil
			}
			return n, err
		}
	}
}

// Two replicas over one store: what one learns, the other reads from the
// store rather than from the upstream. A tag one revalidated is fresh for
// the other, whose own copy in memory had gone stale; a manifest one
// fetched is served by the other with no upstream request.
func TestReplicasShareTheStore(t *testing.T) {
	o := newOrigin(t)
	push(t, o, "library/app:stable", 1024, 1)
	data := t.TempDir()
	// Long enough that a's fresh record is still fresh when b asks, on a
	// loaded machine too.
	const ttl = 2 * time.Second
	// The filesystem store is one process's (it locks its directory): the
	// two share one, standing in for a store that replicas share.
	a := newCache(t, o, options{ttl: ttl, dataDir: data})
	b := newCache(t, o, options{ttl: ttl, dir: a.dir})
	b.do(t, "GET", "/v2/library/app/manifests/stable")
	time.Sleep(ttl + 50*time.Millisecond)
	moved := push(t, o, "library/app:stable", 1024, 1)
	o.reset()
	a.do(t, "GET", "/v2/library/app/manifests/stable") // revalidates: HEAD and GET
	resp, _ := b.do(t, "GET", "/v2/library/app/manifests/stable")
	if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != 200 || got != digestOf(t, moved) {
		t.Fatalf("replica b: %d %s, want the moved tag %s", resp.StatusCode, got, digestOf(t, moved))
	}
	if o.count("HEAD manifests") != 1 || o.count("GET manifests") != 1 || o.total() != 2 {
		t.Fatalf("upstream requests = %v, want 1 HEAD and 1 GET (replica a's)", o.counts)
	}
}
