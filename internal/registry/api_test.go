package registry_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Manifest responses carry the exact digest, type and length, on GET and
// HEAD alike; HEAD has no body.
func TestManifestHeaders(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/alpine:3", 1024, 1)
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	c := newCache(t, o, options{ttl: time.Hour})
	for _, method := range []string{"GET", "HEAD"} {
		for _, ref := range []string{"3", digestOf(t, img)} {
			resp, body := c.do(t, method, "/v2/alpine/manifests/"+ref)
			h := resp.Header
			if resp.StatusCode != 200 || h.Get("Docker-Content-Digest") != digestOf(t, img) ||
				h.Get("Content-Type") != string(mt) || h.Get("Content-Length") != fmt.Sprint(len(raw)) {
				t.Fatalf("%s %s: %d %v", method, ref, resp.StatusCode, h)
			}
			if method == "GET" && !bytes.Equal(body, raw) || method == "HEAD" && len(body) != 0 {
				t.Fatalf("%s %s: body of %d bytes", method, ref, len(body))
			}
		}
	}
}

// A tag that is an index answers clients that accept indexes with the
// index, and others with its linux/amd64 manifest.
func TestAcceptNegotiation(t *testing.T) {
	o := newOrigin(t)
	idx := pushIndex(t, o, "library/multi:1")
	im, _ := idx.IndexManifest()
	var amd64 string
	for _, m := range im.Manifests {
		if m.Platform.Architecture == "amd64" {
			amd64 = m.Digest.String()
		}
	}
	c := newCache(t, o, options{ttl: time.Hour})
	for _, tc := range []struct {
		accept, want string
	}{
		{"application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json", digestOf(t, idx)},
		{"", digestOf(t, idx)},
		{"application/vnd.oci.image.manifest.v1+json", amd64},
		{"application/vnd.docker.distribution.manifest.v2+json", amd64},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			resp, _ := c.do(t, method, "/v2/multi/manifests/1", "Accept", tc.accept)
			if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != 200 || got != tc.want {
				t.Errorf("%s with Accept %q: %d %s, want %s", method, tc.accept, resp.StatusCode, got, tc.want)
			}
		}
	}
}

// Blobs: a HEAD on an uncached blob costs an upstream HEAD, not a download;
// ranges work on a cached blob.
func TestBlobHeadAndRange(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/alpine:3", 10000, 1)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	blob := readAll(t, layers[0])
	c := newCache(t, o, options{ttl: time.Hour})
	o.reset()

	path := "/v2/alpine/blobs/" + d.String()
	resp, body := c.do(t, "HEAD", path)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != fmt.Sprint(len(blob)) ||
		resp.Header.Get("Docker-Content-Digest") != d.String() || len(body) != 0 {
		t.Fatalf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}
	if o.count("HEAD blobs") != 1 || o.count("GET blobs") != 0 {
		t.Fatalf("uncached HEAD cost %v upstream", o.counts)
	}

	for _, cached := range []bool{false, true} {
		resp, body = c.do(t, "GET", path, "Range", "bytes=100-199")
		if resp.StatusCode != 206 || !bytes.Equal(body, blob[100:200]) ||
			resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(blob)) {
			t.Fatalf("range (cached %v): %d %q %v", cached, resp.StatusCode, body, resp.Header)
		}
	}
	resp, body = c.do(t, "GET", path, "Range", "bytes=-10")
	if resp.StatusCode != 206 || !bytes.Equal(body, blob[len(blob)-10:]) {
		t.Fatalf("suffix range: %d", resp.StatusCode)
	}
	resp, _ = c.do(t, "GET", path, "Range", fmt.Sprintf("bytes=%d-", len(blob)))
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(blob)) {
		t.Fatalf("unsatisfiable range: %d %v", resp.StatusCode, resp.Header)
	}
	if o.count("GET blobs") != 1 {
		t.Fatalf("upstream blob GETs = %d, want 1", o.count("GET blobs"))
	}
}

// An upstream that sends the wrong bytes: the client's response is cut
// short (never complete), nothing is stored, and a later pull fetches again.
func TestCorruptBlobIsNeverServedWhole(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/alpine:3", 100000, 1)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	blob := readAll(t, layers[0])
	data := t.TempDir()
	c := newCache(t, o, options{ttl: time.Hour, dataDir: data})
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "GET" || endpoint(r.URL.Path) != "blobs" {
			return false
		}
		bad := bytes.Clone(blob)
		bad[len(bad)/2] ^= 0xff
		w.Header().Set("Content-Length", fmt.Sprint(len(bad)))
		w.Write(bad)
		return true
	})
	resp, err := http.Get(c.URL + "/v2/alpine/blobs/" + d.String())
	if err == nil {
		got, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil && resp.StatusCode == 200 {
			t.Fatalf("a corrupt blob was served whole (%d bytes)", len(got))
		}
	}
	if files := countFiles(t, filepath.Join(data, "blobs")); files != 0 {
		t.Fatalf("%d blob files stored after a corrupt fill", files)
	}
	o.setFault(nil)
	resp2, body := c.do(t, "GET", "/v2/alpine/blobs/"+d.String())
	if resp2.StatusCode != 200 || !bytes.Equal(body, blob) {
		t.Fatalf("pull after the upstream recovered: %d", resp2.StatusCode)
	}
	if o.count("GET blobs") != 2 {
		t.Fatalf("upstream blob GETs = %d, want 2", o.count("GET blobs"))
	}
}

// Wrong manifest bytes and oversized manifests are refused with 502.
func TestBadUpstreamManifests(t *testing.T) {
	for _, tc := range []struct {
		name, wantCode string
		body           func(raw []byte) []byte
	}{
		{"wrong bytes", "UNAVAILABLE", func(raw []byte) []byte { return bytes.Replace(raw, []byte("sha256"), []byte("sha257"), 1) }},
		{"over 4 MiB", "SIZE_INVALID", func(raw []byte) []byte { return append(raw, bytes.Repeat([]byte(" "), 4<<20)...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t)
			img := push(t, o, "library/alpine:3", 1024, 1)
			raw, _ := img.RawManifest()
			data := t.TempDir()
			c := newCache(t, o, options{ttl: time.Hour, dataDir: data})
			o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
				if endpoint(r.URL.Path) != "manifests" {
					return false
				}
				body := tc.body(raw)
				w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
				w.Header().Set("Docker-Content-Digest", digestOf(t, img))
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				if r.Method == "GET" {
					w.Write(body)
				}
				return true
			})
			resp, body := c.do(t, "GET", "/v2/alpine/manifests/"+digestOf(t, img))
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), tc.wantCode) {
				t.Fatalf("GET: %d %s", resp.StatusCode, body)
			}
			if files := countFiles(t, filepath.Join(data, "blobs")); files != 0 {
				t.Fatalf("%d files stored", files)
			}
		})
	}
}

// A client that leaves mid-download does not abort the fill.
func TestClientLeavingDoesNotAbortFill(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/big:1", 4<<20, 1)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	blob := readAll(t, layers[0])
	data := t.TempDir()
	c := newCache(t, o, options{ttl: time.Hour, dataDir: data})
	release := make(chan struct{})
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "GET" || endpoint(r.URL.Path) != "blobs" {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		w.Write(blob[:1<<20])
		w.(http.Flusher).Flush()
		<-release
		w.Write(blob[1<<20:])
		return true
	})
	conn, err := net.Dial("tcp", c.host())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /v2/big/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n", d)
	br := bufio.NewReader(conn)
	if line, _ := br.ReadString('\n'); !strings.Contains(line, "200") {
		t.Fatalf("status line %q", line)
	}
	conn.Close() // leaves while the fill is under way
	close(release)
	waitFor(t, "the fill to commit", func() bool { return countFiles(t, filepath.Join(data, "blobs")) == 1 })
	resp, body := c.do(t, "GET", "/v2/big/blobs/"+d.String())
	if resp.StatusCode != 200 || !bytes.Equal(body, blob) || o.count("GET blobs") != 1 {
		t.Fatalf("after the client left: %d, %d upstream GETs", resp.StatusCode, o.count("GET blobs"))
	}
}

// Pushes and deletes are refused with 405 UNSUPPORTED.
func TestPushIsRefused(t *testing.T) {
	o := newOrigin(t)
	c := newCache(t, o, options{})
	img, _ := random.Image(100, 1)
	ref, _ := name.ParseReference(c.host()+"/docker.io/library/x:1", name.Insecure)
	if err := remote.Write(ref, img); err == nil || !strings.Contains(err.Error(), "pull-through cache") {
		t.Fatalf("push through the cache: %v", err)
	}
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v2/library/x/blobs/uploads/"},
		{"PUT", "/v2/library/x/manifests/1"},
		{"DELETE", "/v2/library/x/manifests/sha256:" + strings.Repeat("a", 64)},
		{"PATCH", "/v2/library/x/blobs/uploads/123"},
	} {
		resp, body := c.do(t, tc.method, tc.path)
		if resp.StatusCode != 405 || !strings.Contains(string(body), "UNSUPPORTED") {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	for _, k := range []string{"POST uploads", "PUT uploads", "PATCH uploads", "PUT manifests", "DELETE manifests"} {
		if o.count(k) != 0 {
			t.Fatalf("refused requests reached the upstream: %v", o.counts)
		}
	}
}

// Bad input gets a clear 4xx, contacts no upstream and writes nothing.
func TestBadInput(t *testing.T) {
	o := newOrigin(t)
	data := t.TempDir()
	c := newCache(t, o, options{dataDir: data})
	hex := strings.Repeat("a", 64)
	for _, tc := range []struct {
		path       string
		wantStatus int
		wantCode   string
	}{
		{"/v2/library/x/blobs/sha256:abc", 400, "DIGEST_INVALID"},
		{"/v2/library/x/blobs/md5:" + hex, 400, "DIGEST_INVALID"},
		{"/v2/library/x/blobs/latest", 400, "DIGEST_INVALID"},
		{"/v2/library/x/manifests/.hidden", 400, "NAME_INVALID"},
		{"/v2/library/x/manifests/" + strings.Repeat("t", 129), 400, "NAME_INVALID"},
		{"/v2/Library/X/manifests/1", 400, "NAME_INVALID"},
		{"/v2/library/../../etc/manifests/1", 400, "NAME_INVALID"},
		{"/v2/docker.io/../x/blobs/sha256:" + hex, 400, "NAME_INVALID"},
		{"/v2/%2e%2e/%2e%2e/manifests/1", 400, "NAME_INVALID"},
		{"/v2/evil.example/x/manifests/1", 404, "NAME_UNKNOWN"},
		{"/v2/_catalog", 404, "UNSUPPORTED"},
		{"/v2/library/x/referrers/notadigest", 400, "DIGEST_INVALID"},
		{"/v2/library/x/tags/list?n=-1", 400, "PAGINATION_NUMBER_INVALID"},
		{"/v2/library/x/tags/list?last=../x", 400, "NAME_INVALID"},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := c.do(t, method, tc.path)
			if resp.StatusCode != tc.wantStatus || method == "GET" && !strings.Contains(string(body), tc.wantCode) {
				t.Errorf("%s %s: %d %s; want %d %s", method, tc.path, resp.StatusCode, body, tc.wantStatus, tc.wantCode)
			}
		}
	}
	if n := o.total(); n != 0 {
		t.Errorf("bad requests reached the upstream: %v", o.counts)
	}
	if n := countFiles(t, data); n != 0 {
		t.Errorf("bad requests wrote %d files", n)
	}
}

// Tag lists are paginated with n and last; the Link header names this
// cache's path for the repository as the client wrote it.
func TestTagListPagination(t *testing.T) {
	o := newOrigin(t)
	for _, tag := range []string{"a", "b", "c"} {
		push(t, o, "team/app:"+tag, 100, 1)
	}
	// go-containerregistry's registry pages but sends no Link; add it as
	// Distribution does.
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if endpoint(r.URL.Path) == "tags" && r.URL.RawQuery == "n=2" {
			w.Header().Set("Link", `</v2/team/app/tags/list?last=b&n=2>; rel="next"`)
		}
		return false
	})
	c := newCache(t, o, options{ttl: time.Hour})
	resp, body := c.do(t, "GET", "/v2/ghcr.io/team/app/tags/list?n=2")
	var list struct {
		Name string
		Tags []string
	}
	json.Unmarshal(body, &list)
	if resp.StatusCode != 200 || list.Name != "ghcr.io/team/app" || strings.Join(list.Tags, ",") != "a,b" {
		t.Fatalf("page 1: %d %s", resp.StatusCode, body)
	}
	if link := resp.Header.Get("Link"); link != `</v2/ghcr.io/team/app/tags/list?last=b&n=2>; rel="next"` {
		t.Fatalf("Link = %q", link)
	}
	resp, body = c.do(t, "GET", "/v2/ghcr.io/team/app/tags/list?n=2&last=b")
	json.Unmarshal(body, &list)
	if resp.StatusCode != 200 || strings.Join(list.Tags, ",") != "c" {
		t.Fatalf("page 2: %d %s", resp.StatusCode, body)
	}
}

// Referrers come from the upstream, are cached, and filter by artifactType.
func TestReferrers(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "team/app:1", 100, 1)
	desc, _ := partial(img)
	for _, at := range []string{"application/vnd.example.sbom", "application/vnd.example.sig"} {
		art := mutate.Subject(mutate.ConfigMediaType(mutate.MediaType(mustRandom(t), types.OCIManifestSchema1), types.MediaType(at)), desc).(v1.Image)
		ref, _ := name.ParseReference(fmt.Sprintf("%s/team/app:%s", o.host(), strings.ReplaceAll(at[len(at)-4:], ".", "")), name.Insecure)
		if err := remote.Write(ref, art); err != nil {
			t.Fatal(err)
		}
	}
	c := newCache(t, o, options{ttl: time.Hour})
	o.reset()
	checkReferrers(t, c, "/v2/ghcr.io/team/app/referrers/"+desc.Digest.String())
	if n := o.count("GET referrers"); n != 1 {
		t.Fatalf("upstream referrers GETs = %d, want 1", n)
	}
}

// checkReferrers asks for the referrers at path, unfiltered, filtered by
// artifactType and again: the sbom and the sig, the sig alone, both.
func checkReferrers(t *testing.T, c *cacheServer, path string) {
	t.Helper()
	for _, tc := range []struct {
		query  string
		want   int
		filter string
	}{{"", 2, ""}, {"?artifactType=application/vnd.example.sig", 1, "artifactType"}, {"", 2, ""}} {
		resp, body := c.do(t, "GET", path+tc.query)
		var idx v1.IndexManifest
		json.Unmarshal(body, &idx)
		if resp.StatusCode != 200 || len(idx.Manifests) != tc.want || resp.Header.Get("OCI-Filters-Applied") != tc.filter ||
			resp.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" {
			t.Fatalf("referrers%s: %d %s %v", tc.query, resp.StatusCode, body, resp.Header)
		}
		if tc.filter != "" && idx.Manifests[0].ArtifactType != "application/vnd.example.sig" {
			t.Fatalf("filtered referrers: %s", body)
		}
	}
}

func mustRandom(t *testing.T) v1.Image {
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func partial(img v1.Image) (v1.Descriptor, error) {
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	d, _ := img.Digest()
	_ = static.NewLayer
	return v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}, nil
}

// countFiles counts the files under root, but for the store's lock file.
func countFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path != filepath.Join(root, "lock") {
			n++
		}
		return nil
	})
	return n
}
