package registry_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// When the upstream fails, cached tags and digests are still served; an
// uncached request fails promptly with an OCI error naming the upstream.
func TestStaleIfError(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fault      func(w http.ResponseWriter, r *http.Request) bool
		url        func(t *testing.T) string // replaces the upstream URL
		wantStatus int                       // for the uncached request
		wantText   string
		// timeout bounds each upstream phase; 0: the harness's minute,
		// so that a slow, loaded test machine is not taken for a fault.
		timeout time.Duration
	}{
		{
			name: "5xx",
			fault: func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}`))
				return true
			},
			wantStatus: http.StatusBadGateway,
			wantText:   "503",
		},
		{
			name: "429",
			fault: func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Retry-After", "120")
				w.WriteHeader(http.StatusTooManyRequests)
				w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`))
				return true
			},
			wantStatus: http.StatusTooManyRequests,
			wantText:   "TOOMANYREQUESTS",
		},
		{
			name: "connection reset",
			fault: func(w http.ResponseWriter, r *http.Request) bool {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return true
			},
			wantStatus: http.StatusBadGateway,
			wantText:   "docker.io",
		},
		{name: "connection refused", url: closedPort, wantStatus: http.StatusBadGateway, wantText: "refused"},
		{name: "black hole", url: blackHole, wantStatus: http.StatusGatewayTimeout, wantText: "docker.io", timeout: 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t)
			img := push(t, o, "library/alpine:3", 1024, 1)
			push(t, o, "library/other:1", 1024, 1)
			want := digestOf(t, img)
			data := t.TempDir()
			warm := newCache(t, o, options{ttl: 0, dataDir: data})
			warm.do(t, "GET", "/v2/alpine/manifests/3")
			warm.Close()

			// The same store, now with a failing upstream. TTL 0: every
			// tag pull tries the upstream first.
			opt := options{ttl: 0, dataDir: data, timeout: tc.timeout}
			if tc.url != nil {
				opt.url = tc.url(t)
			}
			o.setFault(tc.fault)
			c := newCache(t, o, opt)
			for _, path := range []string{"/v2/alpine/manifests/3", "/v2/alpine/manifests/" + want} {
				for _, method := range []string{"GET", "HEAD"} {
					resp, _ := c.do(t, method, path)
					if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != want {
						t.Fatalf("%s %s with a failing upstream: %d %q", method, path, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
					}
				}
			}
			start := time.Now()
			resp, body := c.do(t, "GET", "/v2/other/manifests/1")
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantText) || !strings.Contains(string(body), `"code"`) {
				t.Fatalf("uncached pull: %d %s; want %d with %q", resp.StatusCode, body, tc.wantStatus, tc.wantText)
			}
			t.Logf("uncached pull failed in %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(body)))
		})
	}
}

// After a 429, the cache leaves the upstream alone until Retry-After has
// passed: cached tags are served without contacting it, uncached requests
// fail with 429 and a Retry-After.
func TestRateLimitIsHonoured(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/alpine:3", 1024, 1)
	c := newCache(t, o, options{ttl: 0})
	c.do(t, "GET", "/v2/alpine/manifests/3")
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "300")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	})
	c.do(t, "GET", "/v2/alpine/manifests/3") // meets the 429
	o.reset()
	for range 5 {
		resp, _ := c.do(t, "GET", "/v2/alpine/manifests/3")
		if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != digestOf(t, img) {
			t.Fatalf("cached tag during the rate limit: %d", resp.StatusCode)
		}
	}
	resp, _ := c.do(t, "GET", "/v2/library/nope/manifests/1")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("uncached during the rate limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if n := o.total(); n != 0 {
		t.Fatalf("the upstream was contacted %d times during its rate limit: %v", n, o.counts)
	}
}

// The server starts and serves what it has while every upstream is down.
func TestServesCachedBlobsWithUpstreamDown(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/alpine:3", 4096, 2)
	data := t.TempDir()
	warm := newCache(t, o, options{ttl: time.Hour, dataDir: data})
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	warm.do(t, "GET", "/v2/alpine/blobs/"+d.String())
	warm.Close()

	c := newCache(t, o, options{ttl: time.Hour, dataDir: data, url: closedPort(t)})
	resp, body := c.do(t, "GET", "/v2/alpine/blobs/"+d.String())
	if resp.StatusCode != 200 || len(body) != len(readAll(t, layers[0])) {
		t.Fatalf("cached blob with the upstream down: %d, %d bytes", resp.StatusCode, len(body))
	}
}
