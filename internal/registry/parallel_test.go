package registry_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// parallelOpts fetches blobs of 1 MiB or more as parts of 256 KiB, four at
// a time; a blob of 256 KiB to 1 MiB as its first 256 KiB and the rest.
var parallelOpts = map[string]cache.Parallel{"docker.io": {MinSize: 1 << 20, Parts: 4, PartSize: 256 << 10}}

// ranges records the Range header of every blob GET the origin gets, by
// path.
type ranges struct {
	mu sync.Mutex
	m  map[string][]string
}

// recordRanges records the origin's blob GETs. A range that runs past the
// end of a blob of known size is cut at the end, as RFC 9110 has it and as
// Distribution and Docker Hub do (go-containerregistry's registry answers
// 416).
func recordRanges(o *origin, sizes map[string]int) *ranges {
	rs := &ranges{m: map[string][]string{}}
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "GET" || endpoint(r.URL.Path) != "blobs" {
			return false
		}
		rs.mu.Lock()
		rs.m[r.URL.Path] = append(rs.m[r.URL.Path], r.Header.Get("Range"))
		rs.mu.Unlock()
		var a, b int
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b); err == nil {
			if size, ok := sizes[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]; ok && b >= size {
				r.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", a, size-1))
			}
		}
		return false
	})
	return rs
}

func (rs *ranges) of(d string) []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for p, v := range rs.m {
		if strings.HasSuffix(p, "/"+d) {
			return append([]string(nil), v...)
		}
	}
	return nil
}

// checkCover fails unless the closed ranges (bytes=a-b) asked for tile
// [0, size) exactly: every byte asked for once.
func checkCover(t *testing.T, asked []string, size int64) {
	t.Helper()
	type span struct{ a, b int64 }
	var spans []span
	for _, r := range asked {
		var s span
		if _, err := fmt.Sscanf(r, "bytes=%d-%d", &s.a, &s.b); err != nil {
			t.Fatalf("range %q is not a closed range (asked: %q)", r, asked)
		}
		spans = append(spans, s)
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].a < spans[j].a })
	var next int64
	for _, s := range spans {
		if s.a != next {
			t.Fatalf("ranges asked %q: a gap or overlap at %d (next range starts at %d)", asked, next, s.a)
		}
		next = s.b + 1
	}
	if next != size {
		t.Fatalf("ranges asked %q end at %d, the blob at %d", asked, next, size)
	}
}

func bigLayer(t *testing.T, o *origin, repoTag string, size int64) (v1.Layer, []byte, string) {
	t.Helper()
	img := push(t, o, repoTag, size, 1)
	layers, _ := img.Layers()
	return layers[0], readAll(t, layers[0]), digestOf(t, layers[0])
}

// A cold large blob is fetched as parts of part_size, each byte once, and
// reaches the client whole and verified; a blob under part_size comes in
// one answer, one under min_size in two.
func TestParallelFetch(t *testing.T) {
	o := newOrigin(t)
	_, want, d := bigLayer(t, o, "library/big:1", 3<<20)
	small := push(t, o, "library/small:1", 4096, 1)
	smallLayers, _ := small.Layers()
	sd := digestOf(t, smallLayers[0])
	_, midBytes, md := bigLayer(t, o, "library/mid:1", 600<<10)
	rs := recordRanges(o, map[string]int{sd: len(readAll(t, smallLayers[0]))})
	data := t.TempDir()
	c := newCache(t, o, options{ttl: time.Hour, dataDir: data, parallel: parallelOpts})

	resp, body := c.do(t, "GET", "/v2/big/blobs/"+d)
	if resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("big blob: %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, want))
	}
	if resp.ContentLength != int64(len(want)) {
		t.Fatalf("Content-Length %d, want %d", resp.ContentLength, len(want))
	}
	// No manifest told the blob's size: the first answer is the whole
	// blob's, read for its first part only.
	asked := rs.of(d)
	if parts := partsAfterHead(len(want)); asked[0] != "" || len(asked) != 1+parts {
		t.Fatalf("ranges asked %q; want the whole blob, then %d parts after its first", asked, parts)
	}
	checkCover(t, append([]string{"bytes=0-262143"}, asked[1:]...), int64(len(want)))

	if resp, body := c.do(t, "GET", "/v2/small/blobs/"+sd); resp.StatusCode != 200 || !bytes.Equal(body, readAll(t, smallLayers[0])) {
		t.Fatalf("small blob: %d", resp.StatusCode)
	}
	if n := len(rs.of(sd)); n != 1 {
		t.Fatalf("small blob: %d GETs, want 1", n)
	}
	if resp, body := c.do(t, "GET", "/v2/mid/blobs/"+md); resp.StatusCode != 200 || !bytes.Equal(body, midBytes) {
		t.Fatalf("mid blob: %d", resp.StatusCode)
	}
	if asked, want := rs.of(md), []string{"", fmt.Sprintf("bytes=262144-%d", len(midBytes)-1)}; !slices.Equal(asked, want) {
		t.Fatalf("mid blob: asked %q, want %q", asked, want)
	}
	waitFor(t, "the blobs stored", func() bool { return countFiles(t, filepath.Join(data, "blobs")) == 3 })

	// Warm: from the store, nothing asked.
	o.reset()
	if resp, body := c.do(t, "GET", "/v2/big/blobs/"+d); resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("warm: %d", resp.StatusCode)
	}
	if n := o.count("GET blobs"); n != 0 {
		t.Fatalf("warm pull: %d upstream GETs", n)
	}
}

// A prefetch knows each blob's size from the manifest: a large blob's
// first part is asked for as a range, so that each byte comes once, and a
// small blob is asked for whole, without a range.
func TestParallelPrefetch(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "library/app:1", 3<<20, 2)
	rs := recordRanges(o, nil)
	data := t.TempDir()
	c := newCache(t, o, options{ttl: time.Hour, dataDir: data, prefetch: 1, parallel: parallelOpts})
	if resp, _ := c.do(t, "GET", "/v2/app/manifests/1"); resp.StatusCode != 200 {
		t.Fatalf("manifest: %d", resp.StatusCode)
	}
	layers, _ := img.Layers()
	waitFor(t, "the prefetches stored", func() bool { return countFiles(t, filepath.Join(data, "blobs")) == len(layers)+2 })
	for _, l := range layers {
		asked, size := rs.of(digestOf(t, l)), len(readAll(t, l))
		if asked[0] != "bytes=0-262143" || len(asked) != 1+partsAfterHead(size) {
			t.Fatalf("layer: asked %q; want the first part, then the others", asked)
		}
		checkCover(t, asked, int64(size))
	}
	cd, _ := img.ConfigName()
	if asked := rs.of(cd.String()); !slices.Equal(asked, []string{""}) {
		t.Fatalf("config: asked %q; want it whole, once", asked)
	}
}

// Twenty clients of one cold large blob share one fill: each byte is asked
// of the upstream once, and each client gets the whole blob.
func TestParallelFetchShared(t *testing.T) {
	o := newOrigin(t)
	_, want, d := bigLayer(t, o, "library/big:1", 3<<20)
	rs := recordRanges(o, nil)
	c := newCache(t, o, options{ttl: time.Hour, parallel: parallelOpts})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			resp, err := http.Get(c.URL + "/v2/big/blobs/" + d)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, want) {
				errs <- fmt.Errorf("status %d, %d bytes, %v", resp.StatusCode, len(body), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	asked := rs.of(d)
	if asked[0] != "" {
		t.Fatalf("asked %q; want the whole blob first", asked)
	}
	checkCover(t, append([]string{"bytes=0-262143"}, asked[1:]...), int64(len(want)))
}

// A part the upstream gets wrong is asked for again from where its bytes
// stopped; an upstream that ignores ranges, or a part that fails every
// time, makes the fill go on as one stream. Clients get the right bytes
// in every case, and only verified blobs are stored.
func TestParallelFetchFaults(t *testing.T) {
	part := "bytes=1310720-1572863" // the fifth part after the first
	for _, tc := range []struct {
		name string
		// fault misbehaves on the blob GETs with this Range; n counts
		// the times it was asked.
		fault func(w http.ResponseWriter, r *http.Request, n int, blob []byte) bool
		// asked checks the GETs of the blob.
		asked func(t *testing.T, asked []string)
	}{
		{
			name: "short answer",
			fault: func(w http.ResponseWriter, r *http.Request, n int, blob []byte) bool {
				if n > 1 {
					return false
				}
				// The right headers, half the bytes, then the end.
				w.Header().Set("Content-Range", fmt.Sprintf("bytes 1310720-1572863/%d", len(blob)))
				w.Header().Set("Content-Length", "262144")
				w.WriteHeader(http.StatusPartialContent)
				w.Write(blob[1310720 : 1310720+100000])
				panic(http.ErrAbortHandler)
			},
			asked: func(t *testing.T, asked []string) {
				if !contains(asked, "bytes=1410720-1572863") {
					t.Fatalf("asked %q; want the rest of the part asked again", asked)
				}
			},
		},
		{
			name: "wrong Content-Range",
			fault: func(w http.ResponseWriter, r *http.Request, n int, blob []byte) bool {
				if n > 1 {
					return false
				}
				w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-262143/%d", len(blob)))
				w.WriteHeader(http.StatusPartialContent)
				w.Write(blob[:262144])
				return true
			},
			asked: func(t *testing.T, asked []string) {
				if n := count(asked, part); n != 2 {
					t.Fatalf("asked %q; want the part asked again", asked)
				}
			},
		},
		{
			name: "longer answer",
			fault: func(w http.ResponseWriter, r *http.Request, n int, blob []byte) bool {
				if n > 1 {
					return false
				}
				w.Header().Set("Content-Range", fmt.Sprintf("bytes 1310720-1572863/%d", len(blob)))
				w.WriteHeader(http.StatusPartialContent)
				w.Write(blob[1310720 : 1572864+10])
				return true
			},
			// The part's bytes are all there (the digest checks them):
			// nothing is asked again.
			asked: func(t *testing.T, asked []string) {
				if n := count(asked, part); n != 1 {
					t.Fatalf("asked %q; want the part once", asked)
				}
			},
		},
		{
			name: "ranges ignored",
			fault: func(w http.ResponseWriter, r *http.Request, n int, blob []byte) bool {
				r.Header.Del("Range") // the registry sends the whole blob
				return false
			},
			asked: func(t *testing.T, asked []string) {
				if n := count(asked, part); n != 1 || !contains(asked, "bytes=1310720-") {
					t.Fatalf("asked %q; want the part once, then the rest as one stream", asked)
				}
			},
		},
		{
			name: "part fails every time",
			fault: func(w http.ResponseWriter, r *http.Request, n int, blob []byte) bool {
				http.Error(w, "boom", http.StatusInternalServerError)
				return true
			},
			asked: func(t *testing.T, asked []string) {
				if n := count(asked, part); n != 3 {
					t.Fatalf("asked %q; want the failing part 3 times", asked)
				}
				if !contains(asked, "bytes=1310720-") {
					t.Fatalf("asked %q; want the rest as one stream after it", asked)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t)
			_, want, d := bigLayer(t, o, "library/big:1", 3<<20)
			var mu sync.Mutex
			var asked []string
			n := 0
			o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != "GET" || endpoint(r.URL.Path) != "blobs" {
					return false
				}
				mu.Lock()
				asked = append(asked, r.Header.Get("Range"))
				hit := r.Header.Get("Range") == part
				if hit {
					n++
				}
				k := n
				mu.Unlock()
				return hit && tc.fault(w, r, k, want)
			})
			data := t.TempDir()
			c := newCache(t, o, options{ttl: time.Hour, dataDir: data, parallel: parallelOpts})
			resp, body := c.do(t, "GET", "/v2/big/blobs/"+d)
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Fatalf("blob: %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, want))
			}
			waitFor(t, "the blob stored", func() bool { return countFiles(t, filepath.Join(data, "blobs")) == 1 })
			mu.Lock()
			defer mu.Unlock()
			tc.asked(t, asked)
		})
	}
}

// A part whose bytes are wrong fails the digest: the client's response is
// cut short and nothing is stored.
func TestParallelFetchCorruptPart(t *testing.T) {
	o := newOrigin(t)
	_, want, d := bigLayer(t, o, "library/big:1", 3<<20)
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Range") != "bytes=2097152-2359295" {
			return false
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 2097152-2359295/%d", len(want)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(make([]byte, 262144)) // zeros, not the blob's bytes
		return true
	})
	data := t.TempDir()
	c := newCache(t, o, options{ttl: time.Hour, dataDir: data, parallel: parallelOpts})
	resp, err := http.Get(c.URL + "/v2/big/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && bytes.Equal(body, want) {
		t.Fatalf("a blob with a corrupt part reached the client whole")
	}
	if len(body) >= len(want) {
		t.Fatalf("the client got %d bytes of %d: the response should be cut short", len(body), len(want))
	}
	c.Close()
	if n := countFiles(t, filepath.Join(data, "blobs")); n != 0 {
		t.Fatalf("%d blobs stored; want none", n)
	}
}

// A blob the registry redirects to a CDN: its parts go to the CDN's URL
// straight away; when that URL has expired (403), the registry is asked
// again and its new redirect is followed.
func TestParallelFetchRedirected(t *testing.T) {
	o := newOrigin(t)
	_, want, d := bigLayer(t, o, "library/big:1", 3<<20)
	var mu sync.Mutex
	var cdnGets, expired int
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cdnGets++
		expire := r.URL.Query().Get("sig") == "1" && r.Header.Get("Range") == "bytes=2097152-2359295"
		if expire {
			expired++
		}
		mu.Unlock()
		if expire {
			http.Error(w, "Request has expired", http.StatusForbidden)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(want))
	}))
	t.Cleanup(cdn.Close)
	sig := 0
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "GET" || !strings.HasSuffix(r.URL.Path, "/blobs/"+d) {
			return false
		}
		if r.Header.Get("Authorization") != "" {
			t.Errorf("credentials sent to the CDN")
		}
		mu.Lock()
		sig++
		s := sig
		mu.Unlock()
		http.Redirect(w, r, fmt.Sprintf("%s/blob?sig=%d", cdn.URL, s), http.StatusTemporaryRedirect)
		return true
	})
	c := newCache(t, o, options{ttl: time.Hour, parallel: parallelOpts})
	resp, body := c.do(t, "GET", "/v2/big/blobs/"+d)
	if resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("blob: %d, %d bytes", resp.StatusCode, len(body))
	}
	mu.Lock()
	defer mu.Unlock()
	// After the expiry, the registry is asked again: by the part that
	// found the URL expired, and by those that started before its new
	// redirect came (at most the other parts under way, 3).
	if expired != 1 || sig < 2 || sig > 2+3 {
		t.Fatalf("%d expired answers, %d registry GETs; want 1 and 2 to 5 (the first, then one after the expiry)", expired, sig)
	}
	if want := 1 + partsAfterHead(len(want)) + 1; cdnGets != want {
		t.Fatalf("%d CDN GETs; want %d (the first part, the others, one of them again)", cdnGets, want)
	}
}

// partsAfterHead is how many parts of a blob of size bytes (1 MiB or more)
// follow its first, with parallelOpts.
func partsAfterHead(size int) int { return (size - 1) / (256 << 10) }

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func contains(list []string, s string) bool { return count(list, s) > 0 }

// A client's range past what a fill has fetched gets its bytes as soon as
// the part that holds them arrives, that part fetched before the others
// (lazy-pulling clients read a blob's end first); the response's last byte
// waits for the whole blob's digest.
func TestParallelFetchRangeAhead(t *testing.T) {
	o := newOrigin(t)
	_, want, d := bigLayer(t, o, "library/big:1", 3<<20)
	const ahead = "bytes=2621440-2883583" // the part that holds the range
	release := make(chan struct{})
	var mu sync.Mutex
	var asked []string
	o.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		rg := r.Header.Get("Range")
		if r.Method != "GET" || endpoint(r.URL.Path) != "blobs" {
			return false
		}
		mu.Lock()
		asked = append(asked, rg)
		mu.Unlock()
		if rg != "" && rg != ahead {
			<-release // the rest of the blob is slow to come
		}
		return false
	})
	c := newCache(t, o, options{ttl: time.Hour, parallel: parallelOpts})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	req, _ := http.NewRequest("GET", c.URL+"/v2/big/blobs/"+d, nil)
	req.Header.Set("Range", "bytes=2621440-2621539")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("range: %d", resp.StatusCode)
	}
	got := make([]byte, 100)
	read := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, got[:99]); read <- err }()
	select {
	case err := <-read:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the range's bytes did not come while the blob's earlier parts were held (asked %q)", asked)
	}
	if !bytes.Equal(got[:99], want[2621440:2621539]) {
		t.Fatalf("the range's first 99 bytes are wrong")
	}
	mu.Lock()
	if !contains(asked, ahead) {
		t.Errorf("asked %q; want the part that holds the range", asked)
	}
	mu.Unlock()
	// The last byte: only once every part came and the digest checked.
	last := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, got[99:]); last <- err }()
	select {
	case <-last:
		t.Fatalf("the response's last byte came before the blob was verified")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-last; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want[2621440:2621540]) {
		t.Fatalf("the range's bytes are wrong")
	}
}

// A blob whose first bytes come at the stream rate or faster stays one
// answer: no range is asked for. Slower, it comes in parts as before, the
// bytes read to measure the rate served first.
func TestParallelStreamRate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  int64
		parts bool
	}{
		{"fast source: one stream", 1, false}, // any answer is faster than a byte a second
		{"slow source: parts", 1 << 50, true}, // none is this fast
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t)
			_, want, d := bigLayer(t, o, "library/big:1", 3<<20)
			rs := recordRanges(o, nil)
			opts := map[string]cache.Parallel{}
			for name, p := range parallelOpts {
				p.StreamRate = tc.rate
				opts[name] = p
			}
			c := newCache(t, o, options{ttl: time.Hour, parallel: opts})
			resp, body := c.do(t, "GET", "/v2/big/blobs/"+d)
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Fatalf("big blob: %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, want))
			}
			asked := rs.of(d)
			if !tc.parts {
				if !slices.Equal(asked, []string{""}) {
					t.Fatalf("ranges asked %q; want one whole answer", asked)
				}
				return
			}
			if parts := partsAfterHead(len(want)); len(asked) != 1+parts || asked[0] != "" {
				t.Fatalf("ranges asked %q; want the whole blob, then %d parts after its first", asked, parts)
			}
			checkCover(t, append([]string{"bytes=0-262143"}, asked[1:]...), int64(len(want)))
		})
	}
}
