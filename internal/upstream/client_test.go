package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/oci"
)

// redirectBlobs is a blob store that has every blob at a CDN.
type redirectBlobs struct{ cdn string }

func (b redirectBlobs) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	return nil, registry.RedirectError{Location: b.cdn + "/blobs/" + h.String() + "?sig=1", Code: http.StatusTemporaryRedirect}
}

func TestRedirectDropsAuthorization(t *testing.T) {
	const blob = "layer bytes"
	var mu sync.Mutex // protects cdnRequests
	var cdnRequests []http.Header
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cdnRequests = append(cdnRequests, r.Header.Clone())
		mu.Unlock()
		if r.Header.Get("Range") == "bytes=6-" {
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, blob[6:])
			return
		}
		io.WriteString(w, blob)
	}))
	t.Cleanup(cdn.Close)

	ts := newTokenServer(t)
	reg := newBearerRegistry(t, ts, newRegistry(registry.WithBlobHandler(redirectBlobs{cdn: cdn.URL})))
	c, _, _ := newTestClient(t, reg.URL, nil, func(u *config.Upstream) {
		u.Username, u.Password = "alice", "pw"
	})
	digest := "sha256:" + strings.Repeat("a", 64)

	resp, err := c.Do(context.Background(), http.MethodGet, "library/alpine", "blobs/"+digest, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != blob {
		t.Errorf("body = %q, want %q", got, blob)
	}
	// A resumed download keeps its Range across the redirect.
	resp, err = c.Do(context.Background(), http.MethodGet, "library/alpine", "blobs/"+digest, nil, http.Header{"Range": {"bytes=6-"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); resp.StatusCode != http.StatusPartialContent || got != blob[6:] {
		t.Errorf("ranged GET: %d %q, want 206 %q", resp.StatusCode, got, blob[6:])
	}

	mu.Lock()
	defer mu.Unlock()
	if len(cdnRequests) != 2 {
		t.Fatalf("CDN got %d requests, want 2", len(cdnRequests))
	}
	for _, h := range cdnRequests {
		if v := h.Get("Authorization"); v != "" {
			t.Errorf("CDN received Authorization %q", v)
		}
		if v := h.Get("Referer"); v != "" {
			t.Errorf("CDN received Referer %q", v)
		}
		if v := h.Get("User-Agent"); v != "entrepot" {
			t.Errorf("CDN received User-Agent %q, want entrepot", v)
		}
	}
}

func TestTooManyRedirects(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srv.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	c, _, _ := newTestClient(t, srv.URL, nil, nil)

	_, err := c.Do(context.Background(), http.MethodGet, "a/b", "blobs/sha256:00", nil, nil)
	if e := asError(t, err); e.Status != 0 || !strings.Contains(e.Error(), "redirects") {
		t.Errorf("got %v, want a transport error about redirects", e)
	}
}

func TestBlackHole(t *testing.T) {
	// A listener that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			accepted <- conn
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case conn := <-accepted:
				conn.Close()
			default:
				return
			}
		}
	})

	c, _, _ := newTestClient(t, "http://"+ln.Addr().String(), nil, func(u *config.Upstream) {
		u.ResponseHeaderTimeout = 200 * time.Millisecond
	})
	_, err = c.Do(context.Background(), http.MethodGet, "library/alpine", "manifests/latest", nil, nil)
	if e := asError(t, err); e.Status != 0 || e.Err == nil {
		t.Errorf("got %#v, want a transport error", e)
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	c, _, _ := newTestClient(t, "http://"+addr, nil, nil)
	_, err = c.Do(context.Background(), http.MethodGet, "library/alpine", "manifests/latest", nil, nil)
	e := asError(t, err)
	if e.Status != 0 || e.Err == nil {
		t.Fatalf("got %#v, want a transport error", e)
	}
	if want := `upstream "test": dial tcp ` + addr; !strings.HasPrefix(e.Error(), want) {
		t.Errorf("Error() = %q, want prefix %q", e.Error(), want)
	}
}

func TestBodyStall(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write(make([]byte, 500))
		w.(http.Flusher).Flush()
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	c, _, _ := newTestClient(t, srv.URL, nil, func(u *config.Upstream) {
		u.IdleTimeout = 200 * time.Millisecond
	})
	resp, err := c.Do(context.Background(), http.MethodGet, "library/alpine", "blobs/sha256:00", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if len(got) != 500 {
		t.Errorf("read %d bytes before the stall, want 500", len(got))
	}
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("read error = %v, want ErrStalled", err)
	}
	if e := asError(t, err); e.Upstream != "test" {
		t.Errorf("Upstream = %q, want test", e.Upstream)
	}
}

func TestErrorStatus(t *testing.T) {
	inner := newRegistry()
	putManifest(t, inner, "library/alpine", "latest", manifestJSON("alpine"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/v2/down/"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"maintenance\nuntil noon","detail":{}}]}`)
		case strings.HasPrefix(r.URL.Path, "/v2/html/"):
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>bad gateway</html>")
		default:
			inner.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c, _, _ := newTestClient(t, srv.URL, nil, nil)

	tests := []struct {
		name, method, repo, path string
		wantStatus               int
		wantCode                 string
		wantText                 string
	}{
		{"5xx with an OCI body", http.MethodGet, "down/x", "manifests/latest", 503, "UNAVAILABLE",
			`upstream "test": 503 Service Unavailable: UNAVAILABLE: maintenance until noon`},
		{"5xx with HTML", http.MethodGet, "html/x", "manifests/latest", 502, "",
			`upstream "test": 502 Bad Gateway`},
		{"unknown tag", http.MethodGet, "library/alpine", "manifests/nope", 404, "MANIFEST_UNKNOWN",
			`upstream "test": 404 Not Found: MANIFEST_UNKNOWN: Unknown manifest`},
		{"unknown tag, HEAD", http.MethodHead, "library/alpine", "manifests/nope", 404, "", `upstream "test": 404 Not Found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Do(context.Background(), tt.method, tt.repo, tt.path, nil, nil)
			e := asError(t, err)
			if e.Status != tt.wantStatus || e.Code != tt.wantCode || e.Error() != tt.wantText {
				t.Errorf("got status %d code %q text %q\nwant status %d code %q text %q",
					e.Status, e.Code, e.Error(), tt.wantStatus, tt.wantCode, tt.wantText)
			}
			if errors.Is(e, oci.ErrNotFound) != (tt.wantStatus == 404) {
				t.Errorf("errors.Is(err, oci.ErrNotFound) = %v", errors.Is(e, oci.ErrNotFound))
			}
		})
	}
}

func TestRequest(t *testing.T) {
	requests := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests <- r.Clone(context.Background())
		w.Header().Set("Ratelimit-Limit", "100;w=21600")
		w.Header().Set("Ratelimit-Remaining", "76;w=21600")
		io.WriteString(w, `{"name":"library/alpine","tags":["latest"]}`)
	}))
	t.Cleanup(srv.Close)
	c, _, logs := newTestClient(t, srv.URL+"/mirror", nil, nil)
	if c.Name() != "test" || c.Host() != strings.TrimPrefix(srv.URL, "http://") {
		t.Errorf("Name, Host = %q, %q", c.Name(), c.Host())
	}

	resp, err := c.Do(context.Background(), http.MethodGet, "library/alpine", "tags/list",
		map[string][]string{"n": {"10"}, "last": {"a b"}},
		http.Header{"Accept": {"application/json"}, "Authorization": {"Bearer from-caller"}})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	got := <-requests
	if u := got.URL.String(); u != "/mirror/v2/library/alpine/tags/list?last=a+b&n=10" {
		t.Errorf("URL = %q", u)
	}
	if got.Header.Get("Accept") != "application/json" || got.Header.Get("User-Agent") != "entrepot" {
		t.Errorf("headers = %v", got.Header)
	}
	if v := got.Header.Get("Authorization"); v != "" {
		t.Errorf("the caller's Authorization was forwarded: %q", v)
	}
	if b := c.Budget(); b.Limit != 100 || b.Remaining != 76 || b.Window != 6*time.Hour || b.Saving || b.Floor != 10 {
		t.Errorf("budget %+v, want 76 of 100 in 6h, floor 10, not saving", b)
	}
	_ = logs
}

func TestInvalidInput(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("upstream contacted: %s", r.URL)
	}))
	t.Cleanup(srv.Close)
	c, _, _ := newTestClient(t, srv.URL, nil, nil)
	for _, tt := range []struct{ repo, path string }{
		{"../etc", "manifests/latest"},
		{"Library/alpine", "manifests/latest"},
		{"", "manifests/latest"},
		{"library/alpine", "../../token"},
		{"library/alpine", ""},
	} {
		if _, err := c.Do(context.Background(), http.MethodGet, tt.repo, tt.path, nil, nil); err == nil {
			t.Errorf("Do(%q, %q) succeeded, want an error", tt.repo, tt.path)
		}
	}
}
