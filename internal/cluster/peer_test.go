package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/cluster"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/testenv"
	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
)

const repo = "library/app"

// origin is an upstream registry (go-containerregistry's, in memory)
// under httptest. A gated blob is sent without Content-Length, its first
// half at once and the rest once its gate opens, or never (cut): a fill
// whose size is unknown and whose bytes are still coming.
type origin struct {
	*httptest.Server
	reg http.Handler

	mu    sync.Mutex // protects gates
	gates map[digest.Digest]*gate
}

type gate struct {
	open chan struct{} // closed to send the rest
	cut  bool          // then cut the response instead
}

func newOrigin(t *testing.T) *origin {
	o := &origin{reg: registry.New(registry.Logger(log.New(io.Discard, "", 0))), gates: map[digest.Digest]*gate{}}
	o.Server = httptest.NewServer(o)
	t.Cleanup(o.Close)
	return o
}

// push stores blob b in the registry, and returns its digest.
func (o *origin) push(t *testing.T, b []byte) digest.Digest {
	d := digest.FromBytes(b)
	req := httptest.NewRequest(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), bytes.NewReader(b))
	rec := httptest.NewRecorder()
	o.reg.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("pushing a blob: %d %s", rec.Code, rec.Body)
	}
	return d
}

// gate makes d a gated blob; closing the channel returned opens the gate.
func (o *origin) gate(d digest.Digest, cut bool) chan struct{} {
	g := &gate{open: make(chan struct{}), cut: cut}
	o.mu.Lock()
	o.gates[d] = g
	o.mu.Unlock()
	return g.open
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := strings.LastIndex(r.URL.Path, "/blobs/")
	o.mu.Lock()
	g := o.gates[digest.Digest(r.URL.Path[i+len("/blobs/"):])]
	o.mu.Unlock()
	if i < 0 || g == nil || r.Method != http.MethodGet {
		o.reg.ServeHTTP(w, r)
		return
	}
	if r.Header.Get("Range") != "" {
		http.Error(w, "no resuming a gated blob", http.StatusInternalServerError)
		return
	}
	rec := httptest.NewRecorder()
	o.reg.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	w.WriteHeader(http.StatusOK) // and no Content-Length: the flush makes it chunked
	w.Write(body[:len(body)/2])
	w.(http.Flusher).Flush()
	select {
	case <-g.open:
	case <-r.Context().Done():
		return
	}
	if g.cut {
		panic(http.ErrAbortHandler)
	}
	w.Write(body[len(body)/2:])
}

// newFilling returns a replica whose Handler serves from a real cache (a
// filesystem store) filling from o, and that cache's source for o.
func newFilling(t *testing.T, redisURL string, o *origin) (*replica, *cache.Cache, cache.Source) {
	r := newReplica(t, redisURL)
	dir, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	discard := slog.New(slog.DiscardHandler)
	c := cache.New(ctx, dir.Store(), cache.Options{}, discard)
	r.mux.Handle(cluster.PeerPath, r.Handler(c))
	t.Cleanup(func() { cancel(); c.Close(); dir.Close() })
	u, _ := url.Parse(o.URL)
	return r, c, upstream.New(config.NewUpstream("docker.io", u), nil, discard)
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// peerGet sends a request to r's Handler as a peer would, with auth as
// the Authorization header, and returns the answer, its body read.
func peerGet(t *testing.T, r *replica, method, path, auth, rng string) (*http.Response, []byte) {
	req, _ := http.NewRequest(method, r.URL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestHandlerRefusals(t *testing.T) {
	t.Parallel()
	a, _, _ := newFilling(t, newRedis(t), newOrigin(t))
	unknown := cluster.PeerPath + "blobs/" + digest.FromString("nothing").String()
	for _, tc := range []struct {
		name, path, auth string
		want             int
	}{
		{"no secret", unknown, "", http.StatusUnauthorized},
		{"wrong secret", unknown, "Bearer " + secret + "x", http.StatusUnauthorized},
		{"secret's prefix", unknown, "Bearer " + secret[:4], http.StatusUnauthorized},
		{"lower-case scheme", unknown, "bearer " + secret, http.StatusUnauthorized},
		{"basic", unknown, "Basic " + secret, http.StatusUnauthorized},
		{"bad digest", cluster.PeerPath + "blobs/sha256:nothex", "Bearer " + secret, http.StatusBadRequest},
		{"no digest", cluster.PeerPath + "blobs/", "Bearer " + secret, http.StatusBadRequest},
		{"unknown blob", unknown, "Bearer " + secret, http.StatusNotFound},
		{"other path", cluster.PeerPath + "manifests/x", "Bearer " + secret, http.StatusNotFound},
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				resp, body := peerGet(t, a, method, tc.path, tc.auth, "")
				if resp.StatusCode != tc.want {
					t.Errorf("status %d; want %d", resp.StatusCode, tc.want)
				}
				if tc.want == http.StatusUnauthorized && (len(body) != 0 || resp.Header.Get("WWW-Authenticate") != "Bearer") {
					t.Errorf("401 says more than it should: %q %v", body, resp.Header)
				}
			})
		}
	}
	resp, _ := peerGet(t, a, http.MethodPost, unknown, "Bearer "+secret, "")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, _ = peerGet(t, a, http.MethodPost, unknown, "", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without the secret: %d", resp.StatusCode)
	}
}

// A stored blob: OpenFill from another replica gets its exact bytes, whole
// or from an offset, with standard ranges.
func TestOpenFillOfAStoredBlob(t *testing.T) {
	t.Parallel()
	redisURL, o := newRedis(t), newOrigin(t)
	a, ca, src := newFilling(t, redisURL, o)
	b := newReplica(t, redisURL)
	ctx := context.Background()
	blob := randomBytes(t, 300<<10)
	d := o.push(t, blob)

	fetched, err := ca.Blob(ctx, src, repo, d)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := fetched.Copy(ctx, &buf, 0, -1); err != nil || !bytes.Equal(buf.Bytes(), blob) {
		t.Fatalf("filling a: %v, %d bytes", err, buf.Len())
	}
	fetched.Close()

	for _, off := range []int64{0, 1, 1000, int64(len(blob)) - 1} {
		r, n, err := b.OpenFill(ctx, a.URL, d, off)
		if err != nil {
			t.Fatalf("from %d: %v", off, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || n != int64(len(blob))-off || !bytes.Equal(got, blob[off:]) {
			t.Errorf("from %d: %v, length %d, %d bytes; want %d", off, err, n, len(got), len(blob)-int(off))
		}
	}

	path := cluster.PeerPath + "blobs/" + d.String()
	size := strconv.Itoa(len(blob))
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp, body := peerGet(t, a, method, path, "Bearer "+secret, "bytes=1000-")
		want := map[string]string{
			"Content-Range":         "bytes 1000-" + strconv.Itoa(len(blob)-1) + "/" + size,
			"Content-Length":        strconv.Itoa(len(blob) - 1000),
			"Entrepot-Offset":       "1000",
			"Docker-Content-Digest": d.String(),
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s %q; want %q", method, k, got, v)
			}
		}
		if resp.StatusCode != http.StatusPartialContent || (method == http.MethodGet && !bytes.Equal(body, blob[1000:])) {
			t.Errorf("%s: %d, %d bytes", method, resp.StatusCode, len(body))
		}
		resp, _ = peerGet(t, a, method, path, "Bearer "+secret, "bytes="+size+"-")
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != "bytes */"+size {
			t.Errorf("%s past the end: %d, Content-Range %q", method, resp.StatusCode, resp.Header.Get("Content-Range"))
		}
	}

	if _, _, err := b.OpenFill(ctx, a.URL, digest.FromString("nothing"), 0); !errors.Is(err, cache.ErrNoFill) {
		t.Errorf("unknown blob: %v; want ErrNoFill", err)
	}
	gone := "http://" + testenv.Addr(testenv.FreePort(t))
	if _, _, err := b.OpenFill(ctx, gone, d, 0); err == nil || errors.Is(err, cache.ErrNoFill) || strings.Contains(err.Error(), secret) {
		t.Errorf("replica gone: %v", err)
	}
}

// A fill under way whose size is unknown: another replica reads it from an
// offset as it arrives (206 with Entrepot-Offset), and gets every byte; a
// fill that fails cuts the peer's body rather than ending it short.
func TestOpenFillOfAFillUnderWay(t *testing.T) {
	t.Parallel()
	redisURL, o := newRedis(t), newOrigin(t)
	a, ca, src := newFilling(t, redisURL, o)
	b := newReplica(t, redisURL)
	ctx := context.Background()

	blob := randomBytes(t, 200<<10)
	d := o.push(t, blob)
	open := o.gate(d, false)
	fetching, err := ca.Blob(ctx, src, repo, d)
	if err != nil {
		t.Fatal(err)
	}
	defer fetching.Close()
	if fetching.Size != -1 {
		t.Fatalf("the origin said the size: %d", fetching.Size)
	}
	r, n, err := b.OpenFill(ctx, a.URL, d, 10)
	if err != nil || n != -1 {
		t.Fatalf("OpenFill under way: length %d, %v", n, err)
	}
	defer r.Close()
	resp, _ := peerGet(t, a, http.MethodHead, cluster.PeerPath+"blobs/"+d.String(), "Bearer "+secret, "bytes=10-")
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Entrepot-Offset") != "10" ||
		resp.Header.Get("Content-Range") != "" || resp.Header.Get("Content-Length") != "" {
		t.Errorf("HEAD under way: %d %v", resp.StatusCode, resp.Header)
	}
	close(open)
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, blob[10:]) {
		t.Fatalf("reading a fill under way: %v, %d bytes; want %d", err, len(got), len(blob)-10)
	}

	blob = randomBytes(t, 200<<10)
	d = o.push(t, blob)
	open = o.gate(d, true)
	failing, err := ca.Blob(ctx, src, repo, d)
	if err != nil {
		t.Fatal(err)
	}
	defer failing.Close()
	r, _, err = b.OpenFill(ctx, a.URL, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	close(open)
	if got, err := io.ReadAll(r); err == nil {
		t.Fatalf("a failed fill ended the peer's body as if whole, %d bytes", len(got))
	}
}
