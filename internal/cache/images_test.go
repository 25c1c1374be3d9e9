package cache_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// clock is a test clock that moves only when told.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

// newClockedCache returns a test cache that tells time by clk.
func newClockedCache(t *testing.T, st store.Store, opt cache.Options, clk *clock) *cache.Cache {
	c := newTestCache(t, st, opt)
	cache.SetClock(c, clk.now)
	return c
}

// testImage is an image of the source: its manifest and blobs.
type testImage struct {
	digest digest.Digest
	blobs  []digest.Digest // config first
}

// addImage adds an image of a config and the layers given to src, tagged.
func addImage(src *memSource, tag string, layers ...[]byte) testImage {
	config := src.addBlob([]byte(`{"architecture":"amd64","os":"linux","tag":"` + tag + `","nonce":"` + digest.FromBytes(randomBytes(8)).Encoded() + `"}`))
	img := testImage{blobs: []digest.Digest{config}}
	m := map[string]any{
		"schemaVersion": 2, "mediaType": oci.MediaTypeImageManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 0},
	}
	var ls []map[string]any
	for _, l := range layers {
		d := src.addBlob(l)
		img.blobs = append(img.blobs, d)
		ls = append(ls, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": len(l)})
	}
	m["layers"] = ls
	body, _ := json.Marshal(m)
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	img.digest = src.addManifest(oci.MediaTypeImageManifest, body, tags...)
	return img
}

// addIndex adds an index of the images given, for linux/amd64 and
// linux/arm64, tagged.
func addIndex(src *memSource, tag string, imgs ...testImage) digest.Digest {
	var ms []map[string]any
	for i, img := range imgs {
		arch := []string{"amd64", "arm64"}[i%2]
		ms = append(ms, map[string]any{"mediaType": oci.MediaTypeImageManifest, "digest": img.digest, "size": 1,
			"platform": map[string]string{"os": "linux", "architecture": arch}})
	}
	body, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": oci.MediaTypeImageIndex, "manifests": ms})
	return src.addManifest(oci.MediaTypeImageIndex, body, tag)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// pull pulls a tag as a client does: the manifest, then every blob (of
// every manifest of an index), checking each blob's digest.
func pull(t testing.TB, c *cache.Cache, src cache.Source, tag string) error {
	return pullManifest(t, c, cache.ManifestRequest{Source: src, Repo: "library/x", Tag: tag})
}

func pullManifest(t testing.TB, c *cache.Cache, q cache.ManifestRequest) error {
	m, err := c.Manifest(context.Background(), q)
	if err != nil {
		return err
	}
	var body struct {
		Manifests []oci.Descriptor `json:"manifests"`
		Config    oci.Descriptor   `json:"config"`
		Layers    []oci.Descriptor `json:"layers"`
	}
	json.Unmarshal(m.Body, &body)
	if oci.IsIndex(m.MediaType) {
		for _, child := range body.Manifests {
			if err := pullManifest(t, c, cache.ManifestRequest{Source: q.Source, Repo: q.Repo, Digest: child.Digest}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range append([]oci.Descriptor{body.Config}, body.Layers...) {
		b, err := readBlob(t, c, q.Source, d.Digest)
		if err != nil {
			return err
		}
		if digest.FromBytes(b) != d.Digest {
			return fmt.Errorf("blob %s: wrong bytes", d.Digest)
		}
	}
	return nil
}

// held tells whether the store holds every blob of img.
func held(t *testing.T, st store.Store, img testImage) bool {
	for _, d := range append([]digest.Digest{img.digest}, img.blobs...) {
		if _, err := st.Content.Stat(context.Background(), d); err != nil {
			return false
		}
	}
	return true
}

func usage(t *testing.T, st store.Store) int64 {
	u, err := st.Content.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u.Bytes
}
