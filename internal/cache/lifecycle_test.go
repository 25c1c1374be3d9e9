package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
)

// Past the high watermark, the least recently pulled images go, whole,
// down to the low watermark; a layer that a remaining image shares stays;
// what went is fetched again on its next pull; and no remaining image
// needs the source.
func TestEvictLeastRecentlyPulled(t *testing.T) {
	src := newSource()
	base := randomBytes(100 << 10)
	var imgs []testImage
	for i := range 6 {
		imgs = append(imgs, addImage(src, fmt.Sprint(i), base, randomBytes(100<<10)))
	}
	st, clk := newStore(t), newClock()
	lim := cache.Limits{MaxSize: 500 << 10, High: 0.95, Low: 0.85}
	c := newClockedCache(t, st, cache.Options{Limits: lim}, clk)
	for i := range imgs {
		clk.advance(time.Minute)
		if err := pull(t, c, src, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Image 0 is pulled again, so 1 is now the least recently pulled.
	clk.advance(time.Minute)
	if err := pull(t, c, src, "0"); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	clk.advance(time.Minute)
	if u := usage(t, st); u < 600<<10 {
		t.Fatalf("usage %d before eviction, want over 600 KiB", u)
	}
	r, err := c.Evict(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u := usage(t, st); u > int64(lim.Low*float64(lim.MaxSize)) || u < 300<<10 {
		t.Fatalf("usage %d after eviction (removed %+v), want at most the low watermark %d and most of it kept", u, r, int64(lim.Low*float64(lim.MaxSize)))
	}
	// 1, 2 and 3 went (oldest first); 0, 4 and 5 stay whole.
	for i, want := range []bool{true, false, false, false, true, true} {
		if got := held(t, st, imgs[i]); got != want && want {
			t.Errorf("image %d: held %v, want %v", i, got, want)
		}
		if _, err := st.Content.Stat(context.Background(), imgs[i].digest); (err == nil) != want {
			t.Errorf("image %d's manifest: held %v, want %v", i, err == nil, want)
		}
	}
	if r.Tags != 3 || r.Manifests != 3 {
		t.Errorf("removed %+v, want 3 tags and 3 manifests", r)
	}
	calls := src.count("Manifest") + src.count("OpenBlob")
	for _, i := range []int{0, 4, 5} {
		if err := pull(t, c, src, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := src.count("Manifest") + src.count("OpenBlob"); n != calls {
		t.Fatalf("pulls of kept images made %d source GETs", n-calls)
	}
	// An evicted image is fetched again: its manifest (not answered from
	// memory) and its own layer, not the shared one.
	opens := src.count("OpenBlob")
	if err := pull(t, c, src, "1"); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	if n := src.count("OpenBlob") - opens; n != 2 {
		t.Fatalf("re-pull of an evicted image opened %d blobs, want 2 (its config and own layer)", n)
	}
	if !held(t, st, imgs[1]) {
		t.Fatal("the evicted image is not held after its pull")
	}
}

// An index goes with its manifests when nothing else needs them; a
// manifest another tag points to stays.
func TestEvictIndexWithItsManifests(t *testing.T) {
	src := newSource()
	amd, arm := addImage(src, "", randomBytes(50<<10)), addImage(src, "arm", randomBytes(50<<10))
	index := addIndex(src, "multi", amd, arm)
	st, clk := newStore(t), newClock()
	c := newClockedCache(t, st, cache.Options{Limits: cache.Limits{MaxSize: 1, High: 0.95, Low: 0.85}}, clk)
	ctx := context.Background()
	for _, q := range []cache.ManifestRequest{
		{Source: src, Repo: "library/x", Tag: "multi"},
		{Source: src, Repo: "library/x", Digest: amd.digest},
		{Source: src, Repo: "library/x", Tag: "arm"},
	} {
		if _, err := c.Manifest(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := pull(t, c, src, "arm"); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	clk.advance(time.Hour)
	if _, err := c.Evict(ctx); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]digest.Digest{"index": index, "amd64": amd.digest, "arm64": arm.digest, "arm64 layer": arm.blobs[1]} {
		if _, err := st.Content.Stat(ctx, d); err == nil {
			t.Errorf("%s %s is still held with a bound of 1 byte", name, d)
		}
	}
	if _, err := st.Records.Get(ctx, "manifests/"+string(amd.digest.Algorithm())+"/"+amd.digest.Encoded()); err == nil {
		t.Error("the record of an evicted manifest is left")
	}
	// What the memory held is not served: the next GET asks the source.
	gets := src.count("Manifest")
	if _, err := c.Manifest(ctx, cache.ManifestRequest{Source: src, Repo: "library/x", Digest: amd.digest}); err != nil {
		t.Fatal(err)
	}
	if src.count("Manifest") != gets+1 {
		t.Fatal("an evicted manifest was answered from memory")
	}
}

// Pinned and frozen content survives eviction, and a frozen tag stays on
// its digest with no source request while the source's tag moves.
func TestPinsAndFrozenTagsSurvive(t *testing.T) {
	src := newSource()
	src.ttl = 0
	pinned := addImage(src, "20.1", randomBytes(80<<10))
	frozen := addImage(src, "stable", randomBytes(80<<10))
	other := addImage(src, "other", randomBytes(80<<10))
	st, clk := newStore(t), newClock()
	lim := cache.Limits{MaxSize: 100 << 10, High: 0.95, Low: 0.85, Pins: []string{"docker.io/library/x:20*"}}
	c := newClockedCache(t, st, cache.Options{Limits: lim}, clk)
	ctx := context.Background()
	for _, tag := range []string{"20.1", "stable", "other"} {
		if err := pull(t, c, src, tag); err != nil {
			t.Fatal(err)
		}
		clk.advance(time.Minute)
	}
	if d, err := c.Freeze(ctx, src, "library/x", "stable", nil); err != nil || d != frozen.digest {
		t.Fatalf("Freeze = %s, %v", d, err)
	}
	// The source's tag moves.
	moved := addImage(src, "stable", randomBytes(10))
	clk.advance(time.Hour)
	if _, err := c.Evict(ctx); err != nil {
		t.Fatal(err)
	}
	if !held(t, st, pinned) || !held(t, st, frozen) {
		t.Fatalf("pinned held %v, frozen held %v", held(t, st, pinned), held(t, st, frozen))
	}
	if held(t, st, other) {
		t.Fatal("unpinned content stayed past the bound")
	}
	calls := src.count("Resolve") + src.count("Manifest")
	m, err := c.Manifest(ctx, cache.ManifestRequest{Source: src, Repo: "library/x", Tag: "stable"})
	if err != nil || m.Digest != frozen.digest {
		t.Fatalf("frozen tag = %v, %v; want %s", m, err, frozen.digest)
	}
	if n := src.count("Resolve") + src.count("Manifest"); n != calls {
		t.Fatalf("a frozen tag cost %d source requests", n-calls)
	}
	if _, err := c.Unfreeze(ctx, src, "library/x", "stable"); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Manifest(ctx, cache.ManifestRequest{Source: src, Repo: "library/x", Tag: "stable"}); err != nil || m.Digest != moved.digest {
		t.Fatalf("after unfreeze = %v, %v; want the moved tag %s", m, err, moved.digest)
	}
	if _, err := c.Unfreeze(ctx, src, "library/x", "stable"); !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("unfreezing a tag not frozen: %v", err)
	}
}

// Nothing a client reads goes, and nothing pulled while the eviction runs.
func TestEvictSparesBlobsInUse(t *testing.T) {
	src := newSource()
	img := addImage(src, "1", randomBytes(64<<10))
	st, clk := newStore(t), newClock()
	c := newClockedCache(t, st, cache.Options{Limits: cache.Limits{MaxSize: 1, High: 0.95, Low: 0.85}}, clk)
	if err := pull(t, c, src, "1"); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	ctx := context.Background()
	b, err := c.Blob(ctx, src, "library/x", img.blobs[1])
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour)
	if _, err := c.Evict(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Content.Stat(ctx, img.blobs[1]); err != nil {
		t.Fatal("a blob open for a client was evicted")
	}
	var buf bytes.Buffer
	if err := b.Copy(ctx, &buf, 0, -1); err != nil || digest.FromBytes(buf.Bytes()) != img.blobs[1] {
		t.Fatalf("reading on: %v", err)
	}
	b.Close()
	clk.advance(time.Hour)
	if _, err := c.Evict(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Content.Stat(ctx, img.blobs[1]); err == nil {
		t.Fatal("the blob stayed once closed")
	}
}

// Idle expiry removes what nobody pulled for max_idle, without a bound.
func TestIdleExpiry(t *testing.T) {
	src := newSource()
	old, recent := addImage(src, "old", randomBytes(1000)), addImage(src, "recent", randomBytes(1000))
	st, clk := newStore(t), newClock()
	c := newClockedCache(t, st, cache.Options{Limits: cache.Limits{MaxIdle: 24 * time.Hour}}, clk)
	if err := pull(t, c, src, "old"); err != nil {
		t.Fatal(err)
	}
	clk.advance(20 * time.Hour)
	if err := pull(t, c, src, "recent"); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	clk.advance(5 * time.Hour)
	if _, err := c.Evict(context.Background()); err != nil {
		t.Fatal(err)
	}
	if held(t, st, old) || !held(t, st, recent) {
		t.Fatalf("old held %v (idle 25h), recent held %v (idle 5h); max_idle 24h", held(t, st, old), held(t, st, recent))
	}
}

// Pull times reach the store in batches and come back after a restart.
func TestPullTimesSurviveARestart(t *testing.T) {
	src := newSource()
	a, b := addImage(src, "a", randomBytes(40<<10)), addImage(src, "b", randomBytes(40<<10))
	st, clk := newStore(t), newClock()
	lim := cache.Limits{MaxSize: 60 << 10, High: 0.95, Low: 0.85}
	c := newClockedCache(t, st, cache.Options{Limits: lim}, clk)
	if err := pull(t, c, src, "b"); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour)
	if err := pull(t, c, src, "a"); err != nil { // b is the older
		t.Fatal(err)
	}
	waitFills(t, c)
	c.FlushPulls(context.Background())

	// A new cache on the same store: without the stored times, both
	// would count as seen now, and b, the older, could stay.
	clk.advance(time.Hour)
	c2 := newClockedCache(t, st, cache.Options{Limits: lim}, clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c2.Maintain(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for held(t, st, b) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // Maintain's first check runs within 10s
	}
	if held(t, st, b) || !held(t, st, a) {
		t.Fatalf("after restart: a held %v, b held %v; want b (older) evicted", held(t, st, a), held(t, st, b))
	}
}

// Eviction runs while 20 clients pull: every pull succeeds with the right
// bytes.
func TestEvictWhileClientsPull(t *testing.T) {
	src := newSource()
	base := randomBytes(32 << 10)
	const images = 12
	for i := range images {
		addImage(src, fmt.Sprint(i), base, randomBytes(32<<10))
	}
	st := newStore(t)
	c := newTestCache(t, st, cache.Options{Limits: cache.Limits{MaxSize: 200 << 10, High: 0.5, Low: 0.1}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var evictions atomic.Int64
	evicted := make(chan struct{})
	go func() {
		defer close(evicted)
		for ctx.Err() == nil {
			if _, err := c.Evict(ctx); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
			evictions.Add(1)
		}
	}()
	var wg sync.WaitGroup
	for client := range 20 {
		wg.Go(func() {
			for i := range 15 {
				if err := pull(t, c, src, fmt.Sprint((client+i)%images)); err != nil {
					t.Errorf("client %d: %v", client, err)
					return
				}
			}
		})
	}
	wg.Wait()
	cancel()
	<-evicted
	if evictions.Load() < 2 {
		t.Fatalf("only %d evictions ran", evictions.Load())
	}
	// What the store still holds whole pulls with the source down: no
	// eviction left an image listed without a blob it needs.
	waitFills(t, c)
	src.fail(errors.New("upstream gone"))
	list, err := c.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		for _, img := range r.Tags {
			if img.Held && img.Missing == 0 {
				if err := pull(t, c, src, img.Tag); err != nil {
					t.Errorf("held image %s: %v", img.Tag, err)
				}
			}
		}
	}
}

// Idle expiry also drops tag records whose manifest was never fetched
// (a client that only asks HEAD), once they are older than max_idle.
func TestIdleExpiryOfTagsOnly(t *testing.T) {
	src := newSource()
	addImage(src, "head-only", randomBytes(100))
	st, clk := newStore(t), newClock()
	c := newClockedCache(t, st, cache.Options{Limits: cache.Limits{MaxIdle: 24 * time.Hour}}, clk)
	ctx := context.Background()
	if _, err := c.Manifest(ctx, cache.ManifestRequest{Source: src, Repo: "library/x", Tag: "head-only", Head: true}); err != nil {
		t.Fatal(err)
	}
	if list, _ := c.List(ctx, ""); len(list) != 1 || list[0].Tags[0].Held {
		t.Fatalf("after a HEAD: %+v", list)
	}
	clk.advance(time.Hour)
	if r, err := c.Evict(ctx); err != nil || r.Tags != 0 {
		t.Fatalf("a fresh tag record was expired: %+v, %v", r, err)
	}
	clk.advance(24 * time.Hour)
	if r, err := c.Evict(ctx); err != nil || r.Tags != 1 {
		t.Fatalf("expiry of a tag record idle for 25h: %+v, %v", r, err)
	}
	if list, _ := c.List(ctx, ""); len(list) != 0 {
		t.Fatalf("after expiry: %+v", list)
	}
}

// A manifest that two tags point to goes with both: a sweep once removed
// the first from the list it was walking, and tripped over the gap.
func TestEvictManifestOfTwoTags(t *testing.T) {
	src := newSource()
	old := addImage(src, "old", randomBytes(100<<10))
	src.mu.Lock()
	body := src.manifests[old.digest.String()]
	src.mu.Unlock()
	src.addManifest(oci.MediaTypeImageManifest, body, "alias")
	st, clk := newStore(t), newClock()
	lim := cache.Limits{MaxSize: 250 << 10, High: 0.95, Low: 0.85}
	c := newClockedCache(t, st, cache.Options{Limits: lim}, clk)
	for _, tag := range []string{"old", "alias"} {
		if err := pull(t, c, src, tag); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		clk.advance(time.Minute)
		addImage(src, fmt.Sprint("new", i), randomBytes(100<<10))
		if err := pull(t, c, src, fmt.Sprint("new", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFills(t, c)
	clk.advance(time.Minute)
	r, err := c.Evict(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Tags != 2 || r.Manifests != 1 {
		t.Fatalf("removed %+v, want both tags and their one manifest", r)
	}
	if _, err := st.Content.Stat(context.Background(), old.digest); err == nil {
		t.Fatal("the manifest of both tags is still held")
	}
}
