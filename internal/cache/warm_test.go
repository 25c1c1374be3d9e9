package cache_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/oci"
)

// Warm-up fetches what changed, each blob once, and asks only HEADs for
// tags that did not move.
func TestWarm(t *testing.T) {
	src := newSource()
	src.ttl = 0
	shared := randomBytes(10 << 10)
	addImage(src, "1.27.1", shared, randomBytes(10<<10))
	addImage(src, "1.27.2", shared, randomBytes(10<<10))
	addImage(src, "1.28.0", shared, randomBytes(10<<10))
	st := newStore(t)
	c := newTestCache(t, st, cache.Options{})
	ctx := context.Background()
	var mu sync.Mutex
	final := map[string]cache.WarmProgress{}
	progress := func(p cache.WarmProgress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Done {
			final[p.Image] = p
		}
	}
	q := cache.WarmRequest{Source: src, Repo: "library/x", Tag: "1.27.*"}
	if err := c.Warm(ctx, q, progress); err != nil {
		t.Fatal(err)
	}
	if len(final) != 2 {
		t.Fatalf("warmed %v, want 1.27.1 and 1.27.2", final)
	}
	// 2 configs, 2 own layers, the shared layer once.
	if n := src.count("OpenBlob"); n != 5 {
		t.Fatalf("warm-up opened %d blobs, want 5", n)
	}
	p := final["docker.io/library/x:1.27.2"]
	if p.LayersTotal != 3 || p.Layers != 3 || p.Manifests != 1 || p.Bytes != p.BytesTotal || p.Error != "" {
		t.Fatalf("progress of 1.27.2: %+v", p)
	}
	// Again: nothing moved, so HEADs only.
	gets, opens, heads := src.count("Manifest"), src.count("OpenBlob"), src.count("Resolve")
	if err := c.Warm(ctx, cache.WarmRequest{Source: src, Repo: "library/x", Tag: "1.27.1"}, progress); err != nil {
		t.Fatal(err)
	}
	if src.count("Manifest") != gets || src.count("OpenBlob") != opens || src.count("Resolve") != heads+1 {
		t.Fatalf("re-warm of an unchanged tag: %d GETs, %d blobs, %d HEADs; want 0, 0, 1",
			src.count("Manifest")-gets, src.count("OpenBlob")-opens, src.count("Resolve")-heads)
	}
	// The tag moves to an image with one new layer: only that and its
	// config are fetched.
	addImage(src, "1.27.1", shared, randomBytes(10<<10))
	if err := c.Warm(ctx, cache.WarmRequest{Source: src, Repo: "library/x", Tag: "1.27.1"}, progress); err != nil {
		t.Fatal(err)
	}
	if n := src.count("OpenBlob") - opens; n != 2 {
		t.Fatalf("warm-up after the tag moved opened %d blobs, want 2", n)
	}
	// A failing source stops the warm-up with a clear error.
	src.fail(errors.New("429"))
	err := c.Warm(ctx, cache.WarmRequest{Source: src, Repo: "library/x", Tag: "1.28.0"}, progress)
	if !errors.Is(err, cache.ErrSourceFailing) {
		t.Fatalf("warm-up of a failing source: %v", err)
	}
}

// Warm-up of an index fetches the platforms asked for.
func TestWarmPlatforms(t *testing.T) {
	src := newSource()
	amd, arm := addImage(src, "", randomBytes(100)), addImage(src, "", randomBytes(100))
	addIndex(src, "multi", amd, arm)
	st := newStore(t)
	c := newTestCache(t, st, cache.Options{})
	err := c.Warm(context.Background(), cache.WarmRequest{Source: src, Repo: "library/x", Tag: "multi", Platforms: []string{"linux/arm64"}}, func(cache.WarmProgress) {})
	if err != nil {
		t.Fatal(err)
	}
	if !held(t, st, arm) || held(t, st, amd) {
		t.Fatalf("arm64 held %v, amd64 held %v; want only arm64", held(t, st, arm), held(t, st, amd))
	}
	err = c.Warm(context.Background(), cache.WarmRequest{Source: src, Repo: "library/x", Tag: "multi", Platforms: []string{"windows/amd64"}}, func(cache.WarmProgress) {})
	if !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("warm-up for a platform the index lacks: %v", err)
	}
}
