package cache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
)

// The cache's policy, tested against a source in memory: no HTTP.

// Concurrent clients of one cold blob share one fetch; later ones hit the
// store.
func TestOneFetchForConcurrentClients(t *testing.T) {
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	src := newSource()
	d := src.addBlob(blob)
	c := newTestCache(t, newStore(t), cache.Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got, err := readBlob(t, c, src, d); err != nil || !bytes.Equal(got, blob) {
				t.Errorf("concurrent client: %d bytes, %v", len(got), err)
			}
		})
	}
	wg.Wait()
	waitFills(t, c)
	if got, err := readBlob(t, c, src, d); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("warm read: %d bytes, %v", len(got), err)
	}
	if n := src.count("OpenBlob"); n != 1 {
		t.Fatalf("source fetches = %d, want 1", n)
	}
	if c.Stats.BlobHits.Load() == 0 {
		t.Fatal("the warm read was no hit")
	}
}

// corrupt is a reader of the wrong bytes.
func corrupt(b []byte) io.ReadCloser {
	bad := bytes.Clone(b)
	bad[len(bad)/2] ^= 0xff
	return io.NopCloser(bytes.NewReader(bad))
}

// A source that sends bytes not matching the digest: the reader never
// gets a whole response, nothing is stored, and the next request fetches
// again.
func TestWrongBytesAreNeverStored(t *testing.T) {
	blob := make([]byte, 300_000)
	rand.Read(blob)
	src := newSource()
	d := src.addBlob(blob)
	src.openBlob = func(digest.Digest) io.ReadCloser { return corrupt(blob) }
	st := newStore(t)
	c := newTestCache(t, st, cache.Options{})
	got, err := readBlob(t, c, src, d)
	if !errors.Is(err, oci.ErrDigestMismatch) || len(got) >= len(blob) {
		t.Fatalf("corrupt fill: %d of %d bytes, %v; want it cut short with a digest mismatch", len(got), len(blob), err)
	}
	waitFills(t, c)
	if _, err := st.Content.Stat(context.Background(), d); err == nil {
		t.Fatal("a corrupt blob was stored")
	}
	src.openBlob = nil
	if got, err := readBlob(t, c, src, d); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("after the corrupt fill: %d bytes, %v", len(got), err)
	}
}

const manifestBody = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}`

// A tag never seen is one Manifest (a GET of the tag); after that it is
// revalidated with Resolve (a HEAD) only, and the manifest served from the
// store; when the source fails,
// the cached tag is served (stale-if-error), but not a tag the source says
// is gone.
func TestTagRevalidationAndStaleIfError(t *testing.T) {
	src := newSource()
	src.ttl = 0 // revalidate every pull
	d := src.addManifest(oci.MediaTypeImageManifest, []byte(manifestBody), "1.0")
	c := newTestCache(t, newStore(t), cache.Options{})
	ctx := context.Background()
	q := cache.ManifestRequest{Source: src, Repo: "library/x", Tag: "1.0"}
	for range 3 {
		m, err := c.Manifest(ctx, q)
		if err != nil || m.Digest != d || string(m.Body) != manifestBody {
			t.Fatalf("Manifest = %+v, %v", m, err)
		}
	}
	if src.count("Resolve") != 2 || src.count("Manifest") != 1 {
		t.Fatalf("source calls %v, want 1 Manifest, then 2 Resolve", src.calls)
	}

	src.fail(errors.New("upstream down"))
	m, err := c.Manifest(ctx, q)
	if err != nil || m.Digest != d {
		t.Fatalf("with the source failing: %+v, %v; want the cached tag", m, err)
	}
	if c.Stats.StaleServed.Load() == 0 {
		t.Fatal("no stale answer counted")
	}
	if _, err := c.Manifest(ctx, cache.ManifestRequest{Source: src, Repo: "library/x", Tag: "2.0"}); err == nil {
		t.Fatal("an uncached tag was answered while the source fails")
	}

	src.fail(nil)
	src.mu.Lock()
	delete(src.manifests, "1.0")
	src.mu.Unlock()
	if _, err := c.Manifest(ctx, q); !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("a tag the source says is gone: %v, want not found", err)
	}
}

// A source without the referrers API: the answer is the index tagged
// <alg>-<hex> when there is one, an empty index when there is none.
func TestReferrersWithoutTheAPI(t *testing.T) {
	src := newSource()
	src.noReferrersAPI = true
	subject := src.addManifest(oci.MediaTypeImageManifest, []byte(manifestBody), "1.0")
	other := src.addManifest(oci.MediaTypeImageManifest, []byte(strings.Replace(manifestBody, `"layers":[]`, `"layers":[],"annotations":{"a":"b"}`, 1)))
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + other.String() + `","size":1,"artifactType":"application/vnd.example.sbom"}]}`
	src.addManifest(oci.MediaTypeImageIndex, []byte(index), "sha256-"+subject.Encoded())
	c := newTestCache(t, newStore(t), cache.Options{})
	ctx := context.Background()

	doc, err := c.Referrers(ctx, src, "library/x", subject)
	if err != nil || string(doc.Body) != index {
		t.Fatalf("referrers by the tag schema: %v, %s", err, doc.Body)
	}
	doc, err = c.Referrers(ctx, src, "library/x", other)
	var idx struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err != nil || json.Unmarshal(doc.Body, &idx) != nil || idx.Manifests == nil || len(idx.Manifests) != 0 || idx.MediaType != oci.MediaTypeImageIndex {
		t.Fatalf("referrers of a manifest without any: %v, %s", err, doc.Body)
	}
	// Both are cached for the TTL.
	calls := src.count("Referrers")
	c.Referrers(ctx, src, "library/x", subject)
	if src.count("Referrers") != calls {
		t.Fatal("a fresh referrers answer was fetched again")
	}
}
