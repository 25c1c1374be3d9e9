package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/admin"
	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// origin is a real registry that counts the requests it answers, by
// method and kind ("HEAD manifests", "GET blobs").
type origin struct {
	*httptest.Server
	mu    sync.Mutex
	calls map[string]int
}

func newOrigin(t *testing.T) *origin {
	o := &origin{calls: map[string]int{}}
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, kind := range []string{"manifests", "blobs"} {
			if strings.Contains(r.URL.Path, "/"+kind+"/") {
				o.mu.Lock()
				o.calls[r.Method+" "+kind]++
				o.mu.Unlock()
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) count(call string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[call]
}

// push writes img to the origin as library/app:tag.
func (o *origin) push(t *testing.T, tag string, img v1.Image) {
	ref, _ := name.ParseReference(strings.TrimPrefix(o.URL, "http://")+"/library/app:"+tag, name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

func randomImage(t *testing.T) v1.Image {
	img, err := random.Image(20<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

const token = "t0ken"

// newAdmin returns the admin API, behind httptest, over a cache of the
// origin (as docker.io, with a TTL of 0: every warm-up revalidates).
func newAdmin(t *testing.T, o *origin) *httptest.Server { return newAdminToken(t, o, token) }

func newAdminToken(t *testing.T, o *origin, token string) *httptest.Server {
	return newAdminOptions(t, o, token, cache.Options{})
}

// newAdminOptions is newAdminToken with the cache's options.
func newAdminOptions(t *testing.T, o *origin, token string, opt cache.Options) *httptest.Server {
	u, _ := url.Parse(o.URL)
	cfg := config.NewUpstream("docker.io", u)
	cfg.TTL = 0
	up := upstream.New(cfg, nil, slog.New(slog.DiscardHandler))
	dir, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := cache.New(ctx, dir.Store(), opt, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(admin.New(c, []cache.Source{up}, token, slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { srv.Close(); cancel(); c.Close(); dir.Close() })
	return srv
}

// call sends a request with the token and returns the status and body.
func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRefusedWithoutTheToken(t *testing.T) {
	o := newOrigin(t)
	srv := newAdmin(t, o)
	for _, auth := range []string{"", "Bearer", "Bearer " + token + "x", "bearer " + token, "Basic dDBrZW4=", "Bearer " + token[:4]} {
		for _, path := range []string{"/api/v1/images", "/api/v1/purge", "/nope"} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(`{"image":"docker.io/library/app:1"}`))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s with %q: %d %q", path, auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
}

// Without a token, the admin API answers only requests to a loopback Host
// (no DNS rebinding), and POSTs only with a JSON body (no form a web page
// could send without a preflight).
func TestBrowserRequestsRefused(t *testing.T) {
	o := newOrigin(t)
	srv := newAdminToken(t, o, "")
	for _, tc := range []struct {
		host, contentType string
		status            int
	}{
		{"", "application/json", 404}, // the test server's own 127.0.0.1: allowed (nothing to purge)
		{"localhost:5001", "application/json; charset=utf-8", 404},
		{"[::1]:5001", "application/json", 404},
		{"evil.example:5001", "application/json", 403},
		{"127.0.0.1.evil.example", "application/json", 403},
		{"", "text/plain", 415},
		{"", "application/x-www-form-urlencoded", 415},
		{"", "", 415},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/purge", strings.NewReader(`{"image":"docker.io/library/app:1"}`))
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("Host %q, Content-Type %q: %d, want %d", tc.host, tc.contentType, resp.StatusCode, tc.status)
		}
	}
}

// An upstream that fails is a 502, not our 500.
func TestUpstreamFailureIs502(t *testing.T) {
	o := newOrigin(t)
	srv := newAdmin(t, o)
	o.Close()
	status, body := call(t, srv, "POST", "/api/v1/freeze", `{"image":"docker.io/library/app:1"}`)
	if status != http.StatusBadGateway || strings.Contains(body, "127.0.0.1") {
		t.Fatalf("freeze with the upstream down: %d %s; want 502 without its address", status, body)
	}
}

func TestBadRequests(t *testing.T) {
	o := newOrigin(t)
	srv := newAdmin(t, o)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/api/v1/purge", `not json`, 400, "request body"},
		{"POST", "/api/v1/purge", `{"image":"docker.io/library/app:1","extra":1}`, 400, "unknown field"},
		{"POST", "/api/v1/purge", `{"image":""}`, 400, "no image"},
		{"POST", "/api/v1/purge", `{"image":"UPPER/case"}`, 400, "UPPER"},
		{"POST", "/api/v1/purge", `{"image":"quay.io/x/y:1"}`, 404, `is configured (configured: docker.io)`},
		{"POST", "/api/v1/purge", `{"image":"docker.io/library/app:1"}`, 404, "holds nothing"},
		{"POST", "/api/v1/freeze", `{"image":"docker.io/library/app"}`, 400, "name a tag"},
		{"POST", "/api/v1/freeze", `{"image":"docker.io/library/app:1"}`, 404, ""},
		{"POST", "/api/v1/unfreeze", `{"image":"docker.io/library/app:1"}`, 404, "no tag"},
		{"POST", "/api/v1/warm", `{"images":[]}`, 400, "no images"},
		{"POST", "/api/v1/warm", `{"images":[{"image":"docker.io/library/*:1"}]}`, 400, "only a tag may be a pattern"},
		{"GET", "/api/v1/purge", ``, 405, ""},
	} {
		status, body := call(t, srv, tc.method, tc.path, tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %s: %d %s; want %d with %q", tc.method, tc.path, tc.body, status, body, tc.status, tc.want)
		}
	}
}

// Warm-up through the API streams progress lines and fetches each blob
// once; warming again sends the upstream only HEADs; after the tag moves,
// only the new blobs are fetched.
func TestWarmCountedAtTheUpstream(t *testing.T) {
	o := newOrigin(t)
	first, second := randomImage(t), randomImage(t)
	o.push(t, "1.0", first)
	o.push(t, "1.1", second)
	o.push(t, "2.0", randomImage(t))
	srv := newAdmin(t, o)
	warm := func(image string) []cache.WarmProgress {
		status, body := call(t, srv, "POST", "/api/v1/warm", `{"images":[{"image":"`+image+`"}]}`)
		if status != 200 {
			t.Fatalf("warm %s: %d %s", image, status, body)
		}
		var lines []cache.WarmProgress
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			var p cache.WarmProgress
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			lines = append(lines, p)
		}
		return lines
	}
	lines := warm("docker.io/library/app:1.*")
	done := map[string]cache.WarmProgress{}
	for _, p := range lines {
		if p.Done {
			done[p.Image] = p
		}
	}
	if len(done) != 2 || done["docker.io/library/app:1.0"].Layers != 4 || done["docker.io/library/app:1.1"].Fetched == 0 {
		t.Fatalf("warm-up of 1.*: %+v", done)
	}
	if got := o.count("GET blobs"); got != 8 { // 2 configs, 6 layers
		t.Fatalf("%d blob GETs for 8 blobs", got)
	}
	gets, blobs, heads := o.count("GET manifests"), o.count("GET blobs"), o.count("HEAD manifests")
	if p := warm("docker.io/library/app:1.0"); !p[len(p)-1].Done || p[len(p)-1].Fetched != 0 {
		t.Fatalf("warm again: %+v", p)
	}
	if o.count("GET manifests") != gets || o.count("GET blobs") != blobs || o.count("HEAD manifests") != heads+1 {
		t.Fatalf("warm of an unchanged tag: %d manifest GETs, %d blob GETs, %d HEADs; want 0, 0, 1",
			o.count("GET manifests")-gets, o.count("GET blobs")-blobs, o.count("HEAD manifests")-heads)
	}
	// 1.0 moves to an image that shares nothing: its 4 blobs are fetched,
	// once.
	o.push(t, "1.0", randomImage(t))
	warm("docker.io/library/app:1.0")
	if n := o.count("GET blobs") - blobs; n != 4 {
		t.Fatalf("warm-up after the tag moved: %d blob GETs, want 4", n)
	}
	// A failure is in the image's last line.
	lines = warm("docker.io/library/app:9.9")
	if last := lines[len(lines)-1]; !last.Done || last.Error == "" {
		t.Fatalf("warm of a missing tag: %+v", lines)
	}
}

// Freeze answers with the digest, and ls shows the tag frozen, its size
// and when it was last pulled; unfreeze lets it go.
func TestFreezeAndList(t *testing.T) {
	o := newOrigin(t)
	img := randomImage(t)
	o.push(t, "1", img)
	srv := newAdmin(t, o)
	want, _ := img.Digest()
	status, body := call(t, srv, "POST", "/api/v1/freeze", `{"image":"docker.io/library/app:1"}`)
	var res admin.Result
	if json.Unmarshal([]byte(body), &res); status != 200 || res.Digest.String() != want.String() {
		t.Fatalf("freeze: %d %s; want digest %s", status, body, want)
	}
	status, body = call(t, srv, "GET", "/api/v1/images?repository=docker.io/library/app", "")
	var repos []cache.Repository
	if err := json.Unmarshal([]byte(body), &repos); err != nil || status != 200 || len(repos) != 1 || len(repos[0].Tags) != 1 {
		t.Fatalf("ls: %d %s", status, body)
	}
	if tag := repos[0].Tags[0]; !tag.Frozen || !tag.Pinned || !tag.Held || tag.Size == 0 || time.Since(tag.LastPulled) > time.Minute {
		t.Fatalf("listed %+v", tag)
	}
	if status, body := call(t, srv, "POST", "/api/v1/unfreeze", `{"image":"docker.io/library/app:1"}`); status != 200 || !strings.Contains(body, want.String()) {
		t.Fatalf("unfreeze: %d %s", status, body)
	}
	if status, body := call(t, srv, "GET", "/api/v1/images?repository="+url.QueryEscape("docker.io/*"), ""); status != 200 || strings.Contains(body, `"frozen"`) || !strings.Contains(body, "library/app") {
		t.Fatalf("ls by pattern after unfreeze: %d %s", status, body)
	}
}

func FuzzParseImage(f *testing.F) {
	for _, s := range []string{"nginx", "docker.io/library/nginx:1.27.*", "a/b@sha256:" + strings.Repeat("0", 64), "x:*", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := admin.ParseImage(s, true)
		if err != nil {
			return
		}
		if ref.Registry == "" || ref.Repository == "" {
			t.Fatalf("ParseImage(%q) = %+v", s, ref)
		}
		if !strings.Contains(s, "*") {
			again, err := admin.ParseImage(ref.String(), false)
			if err != nil || again != ref {
				t.Fatalf("%q → %q → %+v, %v", s, ref.String(), again, err)
			}
		}
		_ = fmt.Sprint(ref)
	})
}

// The upstream's policy refuses to warm or freeze a denied image: the
// warm-up's line says why, freeze answers 403, and the origin is asked
// nothing.
func TestDeniedImageIsNotWarmedOrFrozen(t *testing.T) {
	o := newOrigin(t)
	o.push(t, "1", randomImage(t))
	policy := cache.ImagePolicy{Deny: []string{"library/app:1"}}
	srv := newAdminOptions(t, o, token, cache.Options{Policies: map[string]cache.ImagePolicy{"docker.io": policy}})
	asked := func() int {
		return o.count("HEAD manifests") + o.count("GET manifests") + o.count("GET blobs") + o.count("HEAD blobs")
	}
	pushed := asked() // the push's own requests
	want := `docker.io/library/app:1 is denied by upstreams[docker.io].deny \"library/app:1\"`
	if status, body := call(t, srv, "POST", "/api/v1/warm", `{"images":[{"image":"docker.io/library/app:1"}]}`); status != 200 || !strings.Contains(body, `"done":true`) || !strings.Contains(body, want) {
		t.Fatalf("warm: %d %s", status, body)
	}
	if status, body := call(t, srv, "POST", "/api/v1/freeze", `{"image":"docker.io/library/app:1"}`); status != http.StatusForbidden || !strings.Contains(body, want) {
		t.Fatalf("freeze: %d %s", status, body)
	}
	if n := asked() - pushed; n != 0 {
		t.Fatalf("the origin got %d requests", n)
	}
}
