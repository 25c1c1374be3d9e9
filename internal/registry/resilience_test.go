package registry_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A client of one repository joins a fill started for another; when that
// fill fails (the other repository has no such blob), the client does not
// inherit the failure but fetches on its own.
func TestJoinedFillOfAnotherRepoFailing(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/alpine:3", 4096, 1)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	c := newCache(t, o, options{ttl: time.Hour})
	release := make(chan struct{})
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/nope/") {
			<-release
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}`, http.StatusNotFound)
			return true
		}
		return false
	})
	nope := make(chan int)
	go func() {
		resp, err := http.Get(c.URL + "/v2/library/nope/blobs/" + d.String())
		if err != nil {
			nope <- 0
			return
		}
		resp.Body.Close()
		nope <- resp.StatusCode
	}()
	waitFor(t, "the first fill to reach the upstream", func() bool { return o.count("GET blobs") == 1 })
	alpine := make(chan *http.Response)
	go func() {
		resp, _ := http.Get(c.URL + "/v2/library/alpine/blobs/" + d.String())
		alpine <- resp
	}()
	waitFor(t, "the second client to join", func() bool { return c.cache.Stats.BlobJoins.Load() == 1 })
	close(release)
	if got := <-nope; got != http.StatusNotFound {
		t.Fatalf("nope: %d, want 404", got)
	}
	resp := <-alpine
	if resp == nil || resp.StatusCode != 200 {
		t.Fatalf("alpine after the other repo's fill failed: %v", resp)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(b.Bytes(), readAll(t, layers[0])) {
		t.Fatalf("alpine got %d wrong bytes", b.Len())
	}
}

// A fill that fails before its first byte reaches the client as an OCI
// error, not as a connection cut.
func TestFillFailingBeforeFirstByte(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/alpine:3", 4096, 1)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	c := newCache(t, o, options{ttl: time.Hour})
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "GET" || endpoint(r.URL.Path) != "blobs" {
			return false
		}
		w.Header().Set("Content-Length", "4096")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return true
	})
	resp, body := c.do(t, "GET", "/v2/alpine/blobs/"+d.String())
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), `"code"`) || !strings.Contains(string(body), "docker.io") {
		t.Fatalf("got %d %s, want 502 with an OCI error naming the upstream", resp.StatusCode, body)
	}
}

// During an outage, the first stale answer costs one upstream attempt; the
// next pulls are answered from the cache without trying again.
func TestOutageIsNotRetriedOnEveryPull(t *testing.T) {
	o := newOrigin(t)
	push(t, o, "library/alpine:3", 1024, 1)
	c := newCache(t, o, options{ttl: 0})
	c.do(t, "GET", "/v2/alpine/manifests/3")
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	o.reset()
	for range 5 {
		if resp, _ := c.do(t, "GET", "/v2/alpine/manifests/3"); resp.StatusCode != 200 {
			t.Fatalf("stale pull: %d", resp.StatusCode)
		}
	}
	if n := o.total(); n != 1 {
		t.Fatalf("upstream requests during the outage = %d, want 1: %v", n, o.counts)
	}
}

// A tag moved upstream, but the new manifest cannot be fetched: the pull is
// answered with what the tag pointed to before.
func TestMovedTagFallsBackToPreviousContent(t *testing.T) {
	o := newOrigin(t)
	old := push(t, o, "library/app:stable", 1024, 1)
	c := newCache(t, o, options{ttl: 0})
	c.do(t, "GET", "/v2/app/manifests/stable")
	moved := push(t, o, "library/app:stable", 1024, 1)
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == "GET" && endpoint(r.URL.Path) == "manifests" {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	})
	resp, _ := c.do(t, "GET", "/v2/app/manifests/stable")
	if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != 200 || got != digestOf(t, old) {
		t.Fatalf("GET while the new manifest is unavailable: %d %s; want the previous %s (new is %s)",
			resp.StatusCode, got, digestOf(t, old), digestOf(t, moved))
	}
}

// Shutdown: a fill cut short by the cache's end leaves no temporary file;
// after Close the cache still serves what it holds and refuses new fetches
// with 503.
func TestClosedCache(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/alpine:3", 1<<20, 2)
	layers, _ := img.Layers()
	held, _ := layers[0].Digest()
	other, _ := layers[1].Digest()
	data := t.TempDir()
	c := newCache(t, o, options{ttl: time.Hour, dataDir: data})
	if resp, _ := c.do(t, "GET", "/v2/alpine/blobs/"+held.String()); resp.StatusCode != 200 {
		t.Fatalf("warm-up: %d", resp.StatusCode)
	}
	c.Close() // waits for the commit
	stall := make(chan struct{})
	defer close(stall)
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "GET" || endpoint(r.URL.Path) != "blobs" {
			return false
		}
		w.Header().Set("Content-Length", "1048576")
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		<-stall
		return true
	})
	c2 := newCache(t, o, options{ttl: time.Hour, dataDir: data})
	go http.Get(c2.URL + "/v2/alpine/blobs/" + other.String())
	waitFor(t, "the fill to start", func() bool { return c2.cache.Filling() == 1 })
	c2.cancel()
	c2.cache.Close()
	if tmp, _ := os.ReadDir(filepath.Join(data, "tmp")); len(tmp) != 0 {
		t.Fatalf("temporary files left after close: %v", tmp)
	}
	if resp, body := c2.do(t, "GET", "/v2/alpine/blobs/"+held.String()); resp.StatusCode != 200 || !bytes.Equal(body, readAll(t, layers[0])) {
		t.Fatalf("stored blob after close: %d", resp.StatusCode)
	}
	if resp, body := c2.do(t, "GET", "/v2/alpine/blobs/"+other.String()); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") {
		t.Fatalf("new fetch after close: %d %s, want 503", resp.StatusCode, body)
	}
}
