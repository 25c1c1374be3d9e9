package registry_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape returns the cache server's metrics by series, as Prometheus
// reads them.
func scrape(t *testing.T, cs *cacheServer) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	cs.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	series := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series
}

// TestMetricsAndCacheStatus: a scripted sequence of pulls (misses, hits,
// a revalidation, stale answers and a 429 with rate-limit headers) gives
// the answers their Cache-Status and the counters their values.
func TestMetricsAndCacheStatus(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/app:1", 4096, 1)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	cs := newCache(t, o, options{ttl: time.Hour})

	status := func(method, path, want string) int {
		t.Helper()
		resp, body := cs.do(t, method, path, "Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, body)
		}
		if got := resp.Header.Get("Cache-Status"); got != want {
			t.Errorf("%s %s: Cache-Status %q, want %q", method, path, got, want)
		}
		return len(body)
	}
	served := status("GET", "/v2/library/app/manifests/1", "Entrepot; fwd=miss; stored")
	served += status("GET", "/v2/library/app/manifests/1", "Entrepot; hit")
	served += status("GET", "/v2/library/app/blobs/"+ld.String(), "Entrepot; fwd=miss; stored")
	waitFor(t, "the blob committed", func() bool { return cs.cache.Filling() == 0 })
	served += status("GET", "/v2/library/app/blobs/"+ld.String(), "Entrepot; hit")

	// Past the TTL (a cache with a TTL of 0 on the same store), a HEAD
	// revalidates; then the origin answers 429 with its budget, and the
	// cached tag is served stale.
	zero := newCache(t, o, options{dir: cs.dir})
	resp, _ := zero.do(t, "GET", "/v2/library/app/manifests/1")
	if got := resp.Header.Get("Cache-Status"); got != "Entrepot; fwd=stale; fwd-status=200" {
		t.Errorf("revalidated tag: Cache-Status %q", got)
	}
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Ratelimit-Limit", "100;w=21600")
		w.Header().Set("Ratelimit-Remaining", "0;w=21600")
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	})
	for range 2 {
		resp, _ = zero.do(t, "GET", "/v2/library/app/manifests/1")
		if got := resp.Header.Get("Cache-Status"); resp.StatusCode != 200 || got != "Entrepot; hit; detail=stale" {
			t.Errorf("rate-limited: %d, Cache-Status %q", resp.StatusCode, got)
		}
	}
	resp, _ = zero.do(t, "GET", "/v2/library/other/manifests/1")
	if got := resp.Header.Get("Cache-Status"); resp.StatusCode != http.StatusTooManyRequests || got != "Entrepot; fwd=miss; fwd-status=429" {
		t.Errorf("uncached while blocked: %d, Cache-Status %q", resp.StatusCode, got)
	}

	m := scrape(t, cs)
	for series, want := range map[string]float64{
		`entrepot_requests_total{kind="manifest",result="miss",upstream="docker.io"}`:                1,
		`entrepot_requests_total{kind="manifest",result="hit",upstream="docker.io"}`:                 1,
		`entrepot_requests_total{kind="blob",result="miss",upstream="docker.io"}`:                    1,
		`entrepot_requests_total{kind="blob",result="hit",upstream="docker.io"}`:                     1,
		`entrepot_served_bytes_total{upstream="docker.io"}`:                                          float64(served),
		`entrepot_upstream_requests_total{code="200",kind="blob",method="GET",upstream="docker.io"}`: 1,
		`entrepot_request_duration_seconds_count{kind="manifest"}`:                                   2,
		`entrepot_fills_in_flight{upstream="docker.io"}`:                                             0,
		`entrepot_upstream_blocked_until_seconds{upstream="docker.io"}`:                              0,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if got := m[`entrepot_upstream_bytes_total{upstream="docker.io"}`]; got < 4096 {
		t.Errorf("upstream bytes %v, want at least the layer's 4096", got)
	}
	if got := m["entrepot_store_objects"]; got < 2 {
		t.Errorf("store objects %v, want at least 2 (the manifest and the layer)", got)
	}

	z := scrape(t, zero)
	for series, want := range map[string]float64{
		`entrepot_requests_total{kind="manifest",result="revalidated",upstream="docker.io"}`: 1,
		`entrepot_requests_total{kind="manifest",result="stale",upstream="docker.io"}`:       2,
		`entrepot_requests_total{kind="manifest",result="error",upstream="docker.io"}`:       1,
		`entrepot_upstream_ratelimit_limit{upstream="docker.io"}`:                            100,
		`entrepot_upstream_ratelimit_remaining{upstream="docker.io"}`:                        0,
		`entrepot_upstream_ratelimit_window_seconds{upstream="docker.io"}`:                   21600,
		`entrepot_upstream_ratelimit_saving{upstream="docker.io"}`:                           1,
		`entrepot_upstream_failing{upstream="docker.io"}`:                                    1,
	} {
		if got, ok := z[series]; !ok || got != want {
			t.Errorf("second cache: %s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if got := z[`entrepot_upstream_blocked_until_seconds{upstream="docker.io"}`]; got < float64(time.Now().Unix()) {
		t.Errorf("blocked_until %v, want a time after now", got)
	}
	// The 429 came once: the block refused the rest without asking.
	if got := z[`entrepot_upstream_requests_total{code="429",kind="manifest",method="HEAD",upstream="docker.io"}`]; got != 1 {
		t.Errorf("429 answers %v, want 1", got)
	}
}

// TestBudgetFloorStopsRevalidation: once the origin says the budget is
// under its floor, cached tags are served without a request to it, while
// content not cached is still fetched.
func TestBudgetFloorStopsRevalidation(t *testing.T) {
	o := newOrigin(t)
	push(t, o, "library/app:1", 1024, 1)
	push(t, o, "library/new:1", 1024, 1)
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Ratelimit-Limit", "100;w=21600")
		w.Header().Set("Ratelimit-Remaining", "5;w=21600") // under the default 10%
		return false
	})
	cs := newCache(t, o, options{}) // TTL 0: every pull would revalidate
	if resp, _ := cs.do(t, "GET", "/v2/library/app/manifests/1"); resp.StatusCode != 200 {
		t.Fatalf("first pull: %d", resp.StatusCode)
	}
	o.reset()
	for range 3 {
		resp, _ := cs.do(t, "GET", "/v2/library/app/manifests/1")
		if got := resp.Header.Get("Cache-Status"); resp.StatusCode != 200 || got != "Entrepot; hit; detail=stale" {
			t.Errorf("cached tag under the floor: %d, Cache-Status %q", resp.StatusCode, got)
		}
	}
	if n := o.total(); n != 0 {
		t.Errorf("origin got %d requests for a cached tag under the floor, want 0", n)
	}
	if resp, _ := cs.do(t, "GET", "/v2/library/new/manifests/1"); resp.StatusCode != 200 {
		t.Errorf("content not cached under the floor: %d, want it fetched", resp.StatusCode)
	}
	// A tag never seen is asked with a HEAD first under the floor: its
	// content may be stored already, and a HEAD costs no budget.
	if n, heads := o.count("GET manifests"), o.count("HEAD manifests"); n != 1 || heads != 1 {
		t.Errorf("origin got %d manifest GETs and %d HEADs for new content, want 1 of each", n, heads)
	}
}

// A HEAD carries its Cache-Status like a GET: forwarded (nothing stored)
// when the cache did not hold the content, a hit when it did.
func TestCacheStatusOfHeads(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/app:1", 4096, 1)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	cs := newCache(t, o, options{ttl: time.Hour})
	for _, step := range []struct{ method, path, want string }{
		{"HEAD", "/v2/library/app/blobs/" + ld.String(), "Entrepot; fwd=miss"},
		{"GET", "/v2/library/app/blobs/" + ld.String(), "Entrepot; fwd=miss; stored"},
		{"HEAD", "/v2/library/app/blobs/" + ld.String(), "Entrepot; hit"},
		{"GET", "/v2/library/app/manifests/1", "Entrepot; fwd=miss; stored"},
		{"HEAD", "/v2/library/app/manifests/1", "Entrepot; hit"},
	} {
		if step.method == "HEAD" {
			waitFor(t, "the blob committed", func() bool { return cs.cache.Filling() == 0 })
		}
		resp, _ := cs.do(t, step.method, step.path, "Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
		if got := resp.Header.Get("Cache-Status"); resp.StatusCode != 200 || got != step.want {
			t.Errorf("%s %s: %d, Cache-Status %q; want %q", step.method, step.path, resp.StatusCode, got, step.want)
		}
	}
}
