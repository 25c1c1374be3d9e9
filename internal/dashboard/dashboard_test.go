package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entrepot/entrepot/internal/admin"
	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/upstream"
)

func TestRing(t *testing.T) {
	r := newRing[int](3)
	if got := r.all(); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	for i := 1; i <= 5; i++ {
		r.add(i)
	}
	if got := fmt.Sprint(r.all()); got != "[3 4 5]" {
		t.Fatalf("after 1..5 in a ring of 3: %s", got)
	}
}

// Past maxRepos the less pulled half is forgotten, the most pulled kept.
func TestRecentIsBounded(t *testing.T) {
	rc := newRecent()
	for range 5 {
		rc.count(repoKey{"docker.io", "library/nginx"}, true, 100)
	}
	for i := range maxRepos + 10 {
		rc.count(repoKey{"docker.io", fmt.Sprintf("r%d", i)}, false, 1)
	}
	if n := len(rc.repos); n > maxRepos {
		t.Fatalf("%d repositories kept; at most %d", n, maxRepos)
	}
	top := rc.top(3)
	if len(top) != 3 || top[0].Repo != "library/nginx" || top[0].Pulls != 5 || top[0].Bytes != 500 {
		t.Fatalf("top: %+v", top)
	}
}

// The middleware counts a manifest request by tag as a pull, bytes of
// every answer, and keeps the last maxErrors errors, newest first, with
// the message the client got.
func TestMiddleware(t *testing.T) {
	d := &Dashboard{recent: newRecent(), now: time.Now}
	h := httpx.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := httpx.InfoOf(r.Context())
		q := r.URL.Query()
		info.Upstream, info.Repo, info.Kind, info.Ref = "docker.io", q.Get("repo"), q.Get("kind"), q.Get("ref")
		if q.Get("fail") != "" {
			info.Error = "manifest unknown " + q.Get("fail")
			w.WriteHeader(http.StatusNotFound)
			return
		}
		io.WriteString(w, "0123456789")
	}), httpx.RequestID, d.Middleware)
	get := func(query string) {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v2/x?"+query, nil))
	}
	get("repo=library/nginx&kind=manifest&ref=1.27")
	get("repo=library/nginx&kind=manifest&ref=sha256:" + strings.Repeat("a", 64))
	get("repo=library/nginx&kind=blob&ref=sha256:" + strings.Repeat("b", 64))
	get("repo=library/redis&kind=manifest&ref=7")
	get("repo=library/redis&kind=manifest&ref=8")
	for i := range maxErrors + 5 {
		get(fmt.Sprintf("repo=library/gone&kind=manifest&ref=1&fail=%d", i))
	}
	top := d.recent.top(10)
	want := "[{docker.io library/nginx 1 30} {docker.io library/redis 2 20}]"
	if len(top) != 2 || fmt.Sprint([]Repo{top[1], top[0]}) != want {
		t.Fatalf("top: %+v; want %s, redis first", top, want)
	}
	errs := d.recent.errors()
	if len(errs) != maxErrors {
		t.Fatalf("%d errors kept; want %d", len(errs), maxErrors)
	}
	if e := errs[0]; e.Status != 404 || e.Message != fmt.Sprintf("manifest unknown %d", maxErrors+4) || e.RequestID == "" || e.Upstream != "docker.io" {
		t.Fatalf("newest error: %+v", e)
	}
}

// fixture is a dashboard over a real cache on a temporary directory, with
// one upstream and a counter registry as metrics.Metrics has.
func fixture(t testing.TB) (*Dashboard, *prometheus.CounterVec) {
	dir, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	c := cache.New(ctx, dir.Store(), cache.Options{}, log)
	t.Cleanup(func() { cancel(); c.Close() })
	u, _ := url.Parse("http://127.0.0.1:1")
	up := upstream.New(config.Upstream{Name: "docker.io", URL: u}, nil, log)
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "entrepot_requests_total"}, []string{"upstream", "kind", "result"})
	reg.MustRegister(requests)
	return New(c, []*upstream.Client{up}, Options{Counters: reg, Version: "test"}), requests
}

// Many pages polling cost one snapshot a second: within maxAge the same
// one is served, after it a new one.
func TestSnapshotIsShared(t *testing.T) {
	d, requests := fixture(t)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }
	snap := func() Snapshot {
		body, err := d.snapshotJSON(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var s Snapshot
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	requests.WithLabelValues("docker.io", "manifest", "hit").Add(3)
	if s := snap(); s.Totals.Requests["hit"] != 3 || s.Upstreams[0].Requests["hit"] != 3 || s.Upstreams[0].State != "ok" {
		t.Fatalf("first snapshot: %+v", s)
	}
	requests.WithLabelValues("docker.io", "blob", "miss").Add(2)
	now = now.Add(maxAge / 2)
	if s := snap(); s.Totals.Requests["miss"] != 0 {
		t.Fatalf("a snapshot younger than %v was computed again: %+v", maxAge, s.Totals)
	}
	now = now.Add(maxAge)
	s := snap()
	if s.Totals.Requests["miss"] != 2 || s.Upstreams[0].Requests["miss"] != 2 {
		t.Fatalf("a snapshot older than %v was served again: %+v", maxAge, s.Totals)
	}
	if h := s.History; len(h) != 1 || h[0].Hits != 3 || h[0].Misses != 2 {
		t.Fatalf("history: %+v; want the current sample", h)
	}
}

// Behind the admin server: the page and its assets need no token, the
// snapshot does; assets carry an ETag and a content policy that allows
// nothing from elsewhere.
func TestServedBehindAdmin(t *testing.T) {
	d, _ := fixture(t)
	adm := admin.New(d.cache, nil, "tok", slog.New(slog.DiscardHandler))
	d.Register(adm)
	srv := httptest.NewServer(adm)
	defer srv.Close()
	get := func(path string, header ...string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	page := get("/")
	if page.StatusCode != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET /: %d %v", page.StatusCode, page.Header)
	}
	if r := get("/", "If-None-Match", page.Header.Get("Etag")); r.StatusCode != http.StatusNotModified {
		t.Fatalf("GET / with its ETag: %d; want 304", r.StatusCode)
	}
	for path, ct := range map[string]string{"/dashboard/app.js": "text/javascript", "/dashboard/style.css": "text/css"} {
		if r := get(path); r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), ct) {
			t.Errorf("GET %s: %d %q", path, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	if r := get("/dashboard/nope.js"); r.StatusCode != 404 {
		t.Errorf("GET /dashboard/nope.js: %d", r.StatusCode)
	}
	if r := get("/api/v1/dashboard"); r.StatusCode != 401 {
		t.Errorf("the snapshot without a token: %d; want 401", r.StatusCode)
	}
	if r := get("/api/v1/images"); r.StatusCode != 401 {
		t.Errorf("the admin API without a token: %d; want 401", r.StatusCode)
	}
	if r := get("/api/v1/dashboard", "Authorization", "Bearer tok"); r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("the snapshot with the token: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
}

// BenchmarkSnapshot is the cost of one snapshot computed afresh, which
// the pages open share once a second.
func BenchmarkSnapshot(b *testing.B) {
	d, requests := fixture(b)
	for i := range 50 {
		requests.WithLabelValues("docker.io", "manifest", []string{"hit", "miss", "joined"}[i%3]).Add(float64(i))
		d.recent.count(repoKey{"docker.io", fmt.Sprintf("library/r%d", i)}, true, int64(i))
	}
	for b.Loop() {
		d.mu.Lock()
		d.body = nil
		d.mu.Unlock()
		if _, err := d.snapshotJSON(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
