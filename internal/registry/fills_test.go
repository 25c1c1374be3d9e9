package registry_test

import (
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
)

// upstreams[].max_fills: with one download from the upstream under way, a
// second blob waits, then gets 429 TOOMANYREQUESTS with Retry-After; the
// origin is not asked for it. A client joining the running fill is not
// refused, and once it ends the next blob fills.
func TestMaxFills(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/app:1", 1<<20, 2)
	layers, _ := img.Layers()
	a, _ := layers[0].Digest()
	b, _ := layers[1].Digest()
	release := make(chan struct{})
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, a.String()) {
			return false
		}
		w.Header().Set("Content-Length", "1048576")
		junk := make([]byte, 1024)
		rand.Read(junk)
		w.Write(junk) // the first bytes, then nothing until released
		w.(http.Flusher).Flush()
		<-release
		return true // cut: the fill fails, its place is given back
	})
	cs := newCache(t, o, options{maxFills: map[string]int{"docker.io": 1}})

	first, err := http.Get(cs.URL + "/v2/library/app/blobs/" + a.String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	io.ReadFull(first.Body, make([]byte, 512))

	joined, _ := cs.do(t, "HEAD", "/v2/library/app/blobs/"+a.String())
	if joined.StatusCode != 200 {
		t.Errorf("HEAD of the blob being filled: %d", joined.StatusCode)
	}
	before := o.count("GET blobs")
	resp, body := cs.do(t, "GET", "/v2/library/app/blobs/"+b.String())
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "TOOMANYREQUESTS") || !strings.Contains(string(body), "max_fills") {
		t.Fatalf("a second fill past max_fills: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n := o.count("GET blobs") - before; n != 0 {
		t.Fatalf("the origin was asked %d times for the refused blob", n)
	}

	o.setFault(nil)
	close(release)
	io.Copy(io.Discard, first.Body)
	waitFor(t, "the first fill ended", func() bool { return cs.cache.Filling() == 0 })
	if resp, body := cs.do(t, "GET", "/v2/library/app/blobs/"+b.String()); resp.StatusCode != 200 {
		t.Fatalf("the second blob once the first fill ended: %d %s", resp.StatusCode, body)
	}
}
