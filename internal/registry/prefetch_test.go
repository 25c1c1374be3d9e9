package registry_test

import (
	"bytes"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// A GET of an image manifest that was not cached starts filling its config
// and layers; the client's blob requests then join those fills or hit the
// store, and every blob is fetched from the upstream exactly once.
func TestPrefetchAfterManifestMiss(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/app:1", 4096, 6)
	data := t.TempDir()
	c := newCache(t, o, options{ttl: time.Hour, prefetch: 2, dataDir: data})
	o.reset()

	resp, _ := c.do(t, "GET", "/v2/app/manifests/1")
	if resp.StatusCode != 200 {
		t.Fatalf("manifest: %d", resp.StatusCode)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		resp, body := c.do(t, "GET", "/v2/app/blobs/"+d.String())
		if resp.StatusCode != 200 || !bytes.Equal(body, readAll(t, l)) {
			t.Fatalf("layer %s: %d", d, resp.StatusCode)
		}
	}
	// The config is prefetched too, though this client never asked.
	waitFor(t, "the manifest, config and layers to be stored", func() bool {
		return countFiles(t, filepath.Join(data, "blobs")) == len(layers)+2
	})
	if got, want := o.count("GET blobs"), len(layers)+1; got != want {
		t.Fatalf("upstream blob GETs = %d, want %d (each blob once)", got, want)
	}
	if n := c.cache.Stats.Prefetches.Load(); n == 0 {
		t.Fatalf("no prefetch started")
	}
}

// HEADs never prefetch, and prefetch 0 turns it off.
func TestNoPrefetchForHeadOrWhenOff(t *testing.T) {
	o := newOrigin(t)
	push(t, o, "library/app:1", 4096, 3)
	for _, tc := range []struct {
		name     string
		method   string
		prefetch int
	}{{"HEAD", "HEAD", 4}, {"off", "GET", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t, o, options{ttl: time.Hour, prefetch: tc.prefetch})
			o.reset()
			c.do(t, tc.method, "/v2/app/manifests/1")
			c.Close()
			if n := o.count("GET blobs"); n != 0 || c.cache.Stats.Prefetches.Load() != 0 {
				t.Fatalf("%d upstream blob GETs, %d prefetches; want none", n, c.cache.Stats.Prefetches.Load())
			}
		})
	}
}

// Prefetch only uses the room clients leave: while clients' own fills hold
// the upstream's every connection (max_connections), no prefetch starts;
// once they end, prefetch takes over.
func TestPrefetchYieldsToClients(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/app:1", 4096, 6)
	layers, _ := img.Layers()
	c := newCache(t, o, options{ttl: time.Hour, prefetch: 1, conns: map[string]int{"docker.io": 2}})
	release := make(chan struct{})
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == "GET" && endpoint(r.URL.Path) == "blobs" {
			<-release
		}
		return false
	})
	done := make(chan int, 2)
	for _, l := range layers[:2] {
		d, _ := l.Digest()
		go func() {
			resp, _ := http.Get(c.URL + "/v2/app/blobs/" + d.String())
			if resp != nil {
				resp.Body.Close()
				done <- resp.StatusCode
				return
			}
			done <- 0
		}()
	}
	waitFor(t, "the clients' two fills", func() bool { return o.count("GET blobs") == 2 })
	if resp, _ := c.do(t, "GET", "/v2/app/manifests/1"); resp.StatusCode != 200 {
		t.Fatalf("manifest: %d", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond)
	if n := c.cache.Stats.Prefetches.Load(); n != 0 || o.count("GET blobs") != 2 {
		t.Fatalf("%d prefetches and %d blob GETs while clients held every slot; want 0 and 2", n, o.count("GET blobs"))
	}
	close(release)
	for range 2 {
		if code := <-done; code != 200 {
			t.Fatalf("client: %d", code)
		}
	}
	// The other four layers and the config.
	waitFor(t, "the prefetches", func() bool { return c.cache.Stats.Prefetches.Load() == 5 })
}
