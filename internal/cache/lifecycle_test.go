package cache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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

// crashingStore stops taking deletes after a number of them, as a process
// killed at that moment would.
type crashingStore struct {
	mu   sync.Mutex
	left int
}

var errCrashed = errors.New("crashed")

func (c *crashingStore) step() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left == 0 {
		return errCrashed
	}
	c.left--
	return nil
}

type crashContent struct {
	store.Content
	*crashingStore
}

func (c crashContent) Delete(ctx context.Context, d digest.Digest) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.Content.Delete(ctx, d)
}

type crashRecords struct {
	store.Records
	*crashingStore
}

func (c crashRecords) Delete(ctx context.Context, key string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.Records.Delete(ctx, key)
}

// An eviction cut short after any number of its deletes leaves a store in
// which every image it still lists pulls whole, with the source down.
func TestCrashAtEveryStepOfEviction(t *testing.T) {
	src := newSource()
	shared := randomBytes(1000)
	amd, arm := addImage(src, "", shared, randomBytes(1000)), addImage(src, "arm", randomBytes(1000))
	addIndex(src, "multi", amd, arm)
	addImage(src, "solo", shared, randomBytes(1000))
	for steps := 0; ; steps++ {
		st := newStore(t)
		c := newTestCache(t, st, cache.Options{})
		src.fail(nil)
		for _, tag := range []string{"multi", "arm", "solo"} {
			if err := pull(t, c, src, tag); err != nil {
				t.Fatal(err)
			}
		}
		ctx := context.Background()
		waitFills(t, c)
		crash := &crashingStore{left: steps}
		cut := store.Store{Spool: st.Spool, Content: crashContent{st.Content, crash}, Records: crashRecords{st.Records, crash}}
		clk := newClock()
		clk.advance(365 * 24 * time.Hour)
		victim := newClockedCache(t, cut, cache.Options{Limits: cache.Limits{MaxSize: 1, High: 0.95, Low: 0.85}}, clk)
		// The victim knows no pull times: its first eviction only sees
		// the content, the second removes it.
		if r, err := victim.Evict(ctx); err != nil || r != (cache.Removed{}) {
			t.Fatalf("first eviction of content never seen: %+v, %v", r, err)
		}
		clk.advance(time.Second)
		_, err := victim.Evict(ctx)
		if err != nil && !errors.Is(err, errCrashed) {
			t.Fatal(err)
		}
		// After the "restart": what is listed pulls whole from the store.
		src.fail(errors.New("upstream gone"))
		after := newTestCache(t, st, cache.Options{})
		list, lerr := after.List(ctx, "")
		if lerr != nil {
			t.Fatal(lerr)
		}
		for _, r := range list {
			for _, img := range r.Tags {
				if !img.Held {
					continue
				}
				if err := pull(t, after, src, img.Tag); err != nil {
					t.Fatalf("cut after %d deletes: held tag %s does not pull whole: %v", steps, img.Tag, err)
				}
			}
		}
		if err == nil {
			if steps < 5 {
				t.Fatalf("eviction took only %d deletes", steps)
			}
			return // the whole eviction ran: every cut was tried
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
