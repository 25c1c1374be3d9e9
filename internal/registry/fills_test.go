package registry_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

// An upstream whose answer to a resume runs past the size it first
// announced: the fill fails, the client's response is cut short (never a
// whole response of unverified bytes, nor bytes past its Content-Length
// on a connection the client reuses), and the next request on the same
// connection pool gets the blob whole.
func TestResumePastAnnouncedSize(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/app:1", 1<<20, 1)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	want := readAll(t, layers[0])
	var once sync.Once
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, d.String()) {
			return false
		}
		cut := false
		once.Do(func() { cut = true })
		if !cut {
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(want)-4096)) // less than it is
		w.Write(want[:1024])
		w.(http.Flusher).Flush()
		return true // cut after 1024 bytes: the fill resumes from there
	})
	cs := newCache(t, o, options{})
	client := &http.Client{Timeout: 30 * time.Second}

	resp, err := client.Get(cs.URL + "/v2/library/app/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("the response came whole (%d bytes, Content-Length %d) from a fill that failed", len(body), resp.ContentLength)
	}
	waitFor(t, "the fill ended", func() bool { return cs.cache.Filling() == 0 })

	resp, err = client.Get(cs.URL + "/v2/library/app/blobs/" + d.String())
	if err != nil {
		t.Fatalf("the next request on the client's connections: %v", err)
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("the next request: %d, %d bytes, %v; want the blob whole", resp.StatusCode, len(body), err)
	}
}
