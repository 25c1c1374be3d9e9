package cache_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// hookRecords runs a hook once, on the first Delete of a manifest record, or
// on every Put, or after the first Walk of repos/: the moments a sweep's
// snapshot and the store part.
type hookRecords struct {
	store.Records
	mu       sync.Mutex
	onDelete func(key string)
	onPut    func(key string)
	onWalk   func(prefix string)
}

func (h *hookRecords) Delete(ctx context.Context, key string) error {
	h.mu.Lock()
	f := h.onDelete
	if !strings.HasPrefix(key, "manifests/") {
		f = nil // the tag phase holds the tag's lock: a pull from a hook there would wait on it
	} else {
		h.onDelete = nil
	}
	h.mu.Unlock()
	if f != nil {
		f(key)
	}
	return h.Records.Delete(ctx, key)
}

func (h *hookRecords) Put(ctx context.Context, key string, v []byte) error {
	err := h.Records.Put(ctx, key, v)
	h.mu.Lock()
	f := h.onPut
	h.mu.Unlock()
	if f != nil {
		f(key)
	}
	return err
}

func (h *hookRecords) Walk(ctx context.Context, prefix string, fn func(string) error) error {
	err := h.Records.Walk(ctx, prefix, fn)
	h.mu.Lock()
	f := h.onWalk
	if f != nil && prefix == "repos" {
		h.onWalk = nil
	} else {
		f = nil
	}
	h.mu.Unlock()
	if f != nil {
		f(prefix)
	}
	return err
}

type hookContent struct {
	store.Content
	mu       sync.Mutex
	onDelete func(d digest.Digest)
}

func (h *hookContent) Delete(ctx context.Context, d digest.Digest) error {
	h.mu.Lock()
	f := h.onDelete
	h.mu.Unlock()
	if f != nil {
		f(d)
	}
	return h.Content.Delete(ctx, d)
}

// A manifest stored while a sweep runs, after its catalog was read, keeps
// the layer it shares with an image the sweep removes (a docker client
// with the layer at hand never asks for it, so no pull protects it).
func TestSweepKeepsWhatAManifestStoredMeanwhileLists(t *testing.T) {
	src := newSource()
	base := randomBytes(50 << 10)
	a := addImage(src, "a", base, randomBytes(10<<10))
	b := addImage(src, "b", base, randomBytes(10<<10))
	raw, clk := newStore(t), newClock()
	hr := &hookRecords{Records: raw.Records}
	st := store.Store{Spool: raw.Spool, Content: raw.Content, Records: hr}
	c := newClockedCache(t, st, cache.Options{Limits: cache.Limits{MaxSize: 1, High: 0.95, Low: 0.85}}, clk)
	ctx := context.Background()
	if err := pull(t, c, src, "a"); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	clk.advance(time.Hour)
	hr.onDelete = func(string) {
		// A client (docker, which has the base layer locally) pulls b now:
		// its manifest, its config and its own layer.
		clk.advance(time.Second)
		m, err := c.Manifest(ctx, cache.ManifestRequest{Source: src, Repo: "library/x", Tag: "b"})
		if err != nil {
			t.Error(err)
			return
		}
		_ = m
		for _, d := range []digest.Digest{b.blobs[0], b.blobs[2]} {
			if _, err := readBlob(t, c, src, d); err != nil {
				t.Error(err)
			}
		}
		waitFills(t, c)
	}
	if _, err := c.Evict(ctx); err != nil {
		t.Fatal(err)
	}
	_, errM := raw.Content.Stat(ctx, b.digest)
	_, errL := raw.Content.Stat(ctx, a.blobs[1]) // the shared base layer
	t.Logf("b manifest held: %v; shared layer held: %v", errM == nil, errL == nil)
	if errM == nil && errL != nil {
		src.fail(errors.New("upstream gone"))
		err := pull(t, c, src, "b")
		t.Errorf("b's manifest is held but its shared layer was evicted; pull with upstream down: %v", err)
	}
}

// A tag revalidated to a new digest while a sweep runs stays: the sweep
// looks at the record again before it removes it, and with the upstream
// down the tag still resolves.
func TestSweepKeepsATagThatMoved(t *testing.T) {
	src := newSource()
	src.ttl = 0
	addImage(src, "t", randomBytes(1000))
	raw, clk := newStore(t), newClock()
	hr := &hookRecords{Records: raw.Records}
	st := store.Store{Spool: raw.Spool, Content: raw.Content, Records: hr}
	c := newClockedCache(t, st, cache.Options{Limits: cache.Limits{MaxSize: 1, High: 0.95, Low: 0.85}}, clk)
	ctx := context.Background()
	if err := pull(t, c, src, "t"); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	clk.advance(time.Hour)
	moved := addImage(src, "t", randomBytes(1000))
	hr.onWalk = func(string) {
		clk.advance(time.Second)
		if err := pull(t, c, src, "t"); err != nil {
			t.Error(err)
		}
		waitFills(t, c)
	}
	if _, err := c.Evict(ctx); err != nil {
		t.Fatal(err)
	}
	if !held(t, raw, moved) {
		t.Fatalf("the moved image was evicted though just pulled")
	}
	src.fail(errors.New("upstream gone"))
	if err := pull(t, c, src, "t"); err != nil {
		t.Errorf("just-pulled tag t (image %s held whole) does not resolve with the upstream down: %v", moved.digest, err)
	}
}

// A manifest fetched again while the sweep removes it is kept whole, or not
// answered from memory: never a manifest from memory whose body is gone.
func TestMemoNeverAnswersForEvicted(t *testing.T) {
	src := newSource()
	img := addImage(src, "t", randomBytes(1000))
	raw, clk := newStore(t), newClock()
	hc := &hookContent{Content: raw.Content}
	st := store.Store{Spool: raw.Spool, Content: hc, Records: raw.Records}
	c := newClockedCache(t, st, cache.Options{Limits: cache.Limits{MaxSize: 1, High: 0.95, Low: 0.85}}, clk)
	ctx := context.Background()
	if err := pull(t, c, src, "t"); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	clk.advance(time.Hour)
	var once sync.Once
	hc.onDelete = func(d digest.Digest) {
		if d != img.digest {
			return
		}
		once.Do(func() {
			// A client asks for the manifest by digest now: its record is
			// gone, so it is fetched and stored again.
			if _, err := c.Manifest(ctx, cache.ManifestRequest{Source: src, Repo: "library/x", Digest: img.digest}); err != nil {
				t.Error(err)
			}
		})
	}
	if _, err := c.Evict(ctx); err != nil {
		t.Fatal(err)
	}
	hc.onDelete = nil
	_, errBody := raw.Content.Stat(ctx, img.digest)
	src.fail(errors.New("upstream gone"))
	m, err := c.Manifest(ctx, cache.ManifestRequest{Source: src, Repo: "library/x", Digest: img.digest})
	if errBody != nil && err == nil {
		perr := pullManifest(t, c, cache.ManifestRequest{Source: src, Repo: "library/x", Digest: m.Digest})
		t.Errorf("manifest body evicted (%v) but answered from memory; pulling it: %v", errBody, perr)
	}
}

// A manifest pinned by digest stays when the unpinned index that lists it
// would go: the whole unit stays.
func TestPinnedPlatformManifestStays(t *testing.T) {
	src := newSource()
	amd, arm := addImage(src, "", randomBytes(1000)), addImage(src, "", randomBytes(1000))
	addIndex(src, "multi", amd, arm)
	raw, clk := newStore(t), newClock()
	pin := "docker.io/library/x@" + amd.digest.String()
	c := newClockedCache(t, raw, cache.Options{Limits: cache.Limits{MaxSize: 1, High: 0.95, Low: 0.85, Pins: []string{pin}}}, clk)
	ctx := context.Background()
	if err := pull(t, c, src, "multi"); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	clk.advance(time.Hour)
	if _, err := c.Evict(ctx); err != nil {
		t.Fatal(err)
	}
	if !held(t, raw, amd) {
		t.Errorf("%s pinned by digest (%s) was evicted with its index", amd.digest, pin)
	}
}

// A warm-up moves a tag only once the new image is whole: one cut short
// (here, every blob fetch fails) leaves the tag on the image it pointed to,
// which pulls with the upstream down.
func TestWarmMovesTheTagLast(t *testing.T) {
	src := newSource()
	src.ttl = 0
	addImage(src, "t", randomBytes(1000))
	st := newStore(t)
	c := newTestCache(t, st, cache.Options{})
	ctx := context.Background()
	if err := pull(t, c, src, "t"); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	moved := addImage(src, "t", randomBytes(1000))
	src.openBlob = func(digest.Digest) io.ReadCloser { return errReader{} } // "killed" before any blob lands
	c.Warm(ctx, cache.WarmRequest{Source: src, Repo: "library/x", Tag: "t"}, func(cache.WarmProgress) {})
	waitFills(t, c)
	src.openBlob = nil
	src.fail(errors.New("upstream gone"))
	c2 := newTestCache(t, st, cache.Options{}) // restart
	m, err := c2.Manifest(ctx, cache.ManifestRequest{Source: src, Repo: "library/x", Tag: "t"})
	t.Logf("after the cut warm, t -> %v (moved %s), %v", m.Digest, moved.digest, err)
	if err := pull(t, c2, src, "t"); err != nil {
		t.Errorf("after a warm cut short, t no longer pulls with the upstream down (it did before): %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("killed") }
func (errReader) Close() error             { return nil }

// Freeze fetches every platform of a multi-arch tag: then a client that
// does not accept indexes gets its platform's manifest with no upstream
// request.
func TestFreezeFetchesEveryPlatform(t *testing.T) {
	src := newSource()
	amd, arm := addImage(src, "", randomBytes(100)), addImage(src, "", randomBytes(100))
	addIndex(src, "multi", amd, arm)
	st := newStore(t)
	c := newTestCache(t, st, cache.Options{})
	ctx := context.Background()
	if _, err := c.Freeze(ctx, src, "library/x", "multi", nil); err != nil {
		t.Fatal(err)
	}
	waitFills(t, c)
	calls := src.count("Manifest") + src.count("Resolve") + src.count("OpenBlob")
	noIndex := func(mt string) bool { return !strings.Contains(mt, "index") && !strings.Contains(mt, "list") }
	_, err := c.Manifest(ctx, cache.ManifestRequest{Source: src, Repo: "library/x", Tag: "multi", Accepts: noIndex})
	n := src.count("Manifest") + src.count("Resolve") + src.count("OpenBlob") - calls
	if n > 0 || err != nil {
		t.Errorf("a frozen multi-arch tag cost %d upstream requests (%v) for a client that does not accept indexes; held amd64: %v", n, err, held(t, st, amd))
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
