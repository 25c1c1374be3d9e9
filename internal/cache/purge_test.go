package cache_test

import (
	"context"
	"errors"
	"testing"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/oci"
)

// Purge drops a tag, a manifest or a whole repository, and only the blobs
// nothing else needs.
func TestPurge(t *testing.T) {
	src := newSource()
	shared := randomBytes(1000)
	one, two := addImage(src, "1", shared, randomBytes(1000)), addImage(src, "2", shared, randomBytes(1000))
	st := newStore(t)
	c := newTestCache(t, st, cache.Options{})
	ctx := context.Background()
	for _, tag := range []string{"1", "2"} {
		if err := pull(t, c, src, tag); err != nil {
			t.Fatal(err)
		}
	}
	waitFills(t, c)
	r, err := c.Purge(ctx, "docker.io", "library/x", "1", "")
	if err != nil || r.Tags != 1 || r.Manifests != 1 || r.Blobs != 2 {
		t.Fatalf("purge tag = %+v, %v; want 1 tag, 1 manifest, 2 blobs (its config and own layer)", r, err)
	}
	if held(t, st, one) || !held(t, st, two) {
		t.Fatalf("after purging 1: 1 held %v, 2 held %v", held(t, st, one), held(t, st, two))
	}
	if _, err := c.Purge(ctx, "docker.io", "library/x", "1", ""); !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("purging it again: %v, want not found", err)
	}
	// The next pull fetches afresh.
	gets := src.count("Manifest")
	if err := pull(t, c, src, "1"); err != nil || src.count("Manifest") != gets+1 {
		t.Fatalf("pull after purge: %v, %d GETs", err, src.count("Manifest")-gets)
	}
	waitFills(t, c)
	if r, err := c.Purge(ctx, "docker.io", "library/x", "", two.digest); err != nil || r.Manifests != 1 || r.Tags != 1 {
		t.Fatalf("purge digest = %+v, %v", r, err)
	}
	if r, err := c.Purge(ctx, "docker.io", "library/x", "", ""); err != nil || r.Tags != 1 || r.Manifests != 1 || r.Blobs != 3 {
		t.Fatalf("purge repository = %+v, %v; want the last tag, its manifest and 3 blobs", r, err)
	}
	if u := usage(t, st); u != 0 {
		t.Fatalf("%d bytes left after purging the only repository", u)
	}
	list, err := c.List(ctx, "")
	if err != nil || len(list) != 0 {
		t.Fatalf("List after purge = %+v, %v", list, err)
	}
}

func TestList(t *testing.T) {
	src := newSource()
	img := addImage(src, "1", randomBytes(1000))
	st := newStore(t)
	c := newTestCache(t, st, cache.Options{Limits: cache.Limits{Pins: []string{"docker.io/library/x:1"}}})
	if err := pull(t, c, src, "1"); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	list, err := c.List(context.Background(), "docker.io/library/x")
	if err != nil || len(list) != 1 || len(list[0].Tags) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	got := list[0].Tags[0]
	if got.Tag != "1" || got.Digest != img.digest || !got.Held || !got.Pinned || got.Size < 1000 || got.LastPulled.IsZero() {
		t.Fatalf("listed %+v", got)
	}
	if list, _ := c.List(context.Background(), "docker.io/other"); len(list) != 0 {
		t.Fatalf("a filter for another repository listed %+v", list)
	}
}
