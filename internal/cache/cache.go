// Package cache is the fill-once pull-through cache: the one place that
// decides whether a request is a hit, joins a fill under way, or starts one.
//
// Blobs are filled by streaming: the first request starts one upstream GET,
// its bytes go to the store and to every client that asks meanwhile, and the
// digest is verified before the blob becomes visible (fill.go, blob.go).
// Manifests, tags, referrers and tag lists are small documents fetched once
// per key through a singleflight group and revalidated per their upstream's
// TTL, with stale-if-error (manifest.go, document.go).
package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/singleflight"
)

// Upstream is an upstream registry as the cache sees it.
type Upstream struct {
	*upstream.Client
	// TTL is how long a tag, a tag list or a referrers answer stays fresh.
	TTL time.Duration
}

// Errors the cache returns besides the upstream's and the store's.
var (
	// ErrDigestMismatch: an upstream sent bytes that do not hash to the
	// digest asked for (or the one it announced). Nothing was stored.
	ErrDigestMismatch = errors.New("upstream content does not match its digest")
	// ErrTooLarge: an upstream document exceeds MaxDocumentSize.
	ErrTooLarge = errors.New("upstream document too large")
	// ErrBadUpstream: an upstream answer the cache cannot use (an index
	// without manifests, a blob without a size).
	ErrBadUpstream = errors.New("unusable upstream answer")
	// ErrClosed: the cache is shutting down and starts no new fetches.
	ErrClosed = errors.New("cache is shutting down")
)

// MaxDocumentSize bounds manifests, tag lists and referrers read from an
// upstream (the OCI spec lets registries refuse manifests over 4 MiB).
const MaxDocumentSize = 4 << 20

// quietPeriod is how long a failing upstream is left alone while cached
// answers cover for it.
const quietPeriod = 10 * time.Second

// documentTimeout bounds a fetch of a small document, beyond the upstream
// client's own connect and header timeouts.
const documentTimeout = 60 * time.Second

// Cache serves blobs and manifests from the store, filling it from
// upstreams on a miss.
type Cache struct {
	store store.Store
	log   *slog.Logger
	now   func() time.Time
	// ctx is the lifetime of fills: they outlive the request that started
	// them, and end when the cache shuts down.
	ctx context.Context

	// Stats counts what the cache decided; read them with Load.
	Stats Stats
	// prefetch bounds background fills per upstream; 0 turns them off.
	prefetch int

	mu    sync.Mutex // protects fills and quiet
	fills map[digest.Digest]*fill
	// quiet holds, per upstream, until when cached answers are served
	// without asking it again after a failure: during an outage each pull
	// is answered at once instead of waiting for the upstream's timeout.
	quiet map[string]time.Time

	slotsMu sync.Mutex
	slots   map[string]chan struct{} // per upstream: fills holding a prefetch slot

	docs singleflight.Group // one fetch per manifest, tag or document key
	memo *memo              // manifests and tag records in memory

	bgMu   sync.Mutex     // orders spawn against Close
	bg     sync.WaitGroup // fills, prefetches and document fetches under way
	closed bool
}

// Stats are the cache's counters, one per branch of the fill path.
type Stats struct {
	BlobHits, BlobMisses, BlobJoins, BlobFills, BlobFillErrors atomic.Int64
	ManifestHits, ManifestFills                                atomic.Int64
	TagHits, TagRevalidations, TagChanges, StaleServed         atomic.Int64
	Prefetches                                                 atomic.Int64
}

// Options are the cache's settings.
type Options struct {
	// Prefetch is how many blobs of a newly fetched image manifest are
	// filled at once per upstream, in the background. 0: none.
	Prefetch int
}

// memoBytes bounds the manifests and tag records kept in memory: some
// thousands of manifests, enough for the images a fleet pulls.
const memoBytes = 32 << 20

// New returns a cache over s. ctx bounds the fills it runs.
func New(ctx context.Context, s store.Store, opt Options, log *slog.Logger) *Cache {
	return &Cache{
		store:    s,
		log:      log,
		now:      time.Now,
		ctx:      ctx,
		prefetch: opt.Prefetch,
		memo:     newMemo(memoBytes),
		fills:    map[digest.Digest]*fill{},
		quiet:    map[string]time.Time{},
		slots:    map[string]chan struct{}{},
	}
}

// flight runs fn once for all concurrent callers with the same key. fn runs
// under the cache's context, not the first caller's, so one impatient client
// cannot fail the others; each caller waits on its own context.
func (c *Cache) flight(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	ch := make(chan singleflight.Result, 1)
	started := c.spawn(func() {
		v, err, shared := c.docs.Do(key, func() (any, error) {
			fctx, cancel := context.WithTimeout(c.ctx, documentTimeout)
			defer cancel()
			return fn(fctx)
		})
		ch <- singleflight.Result{Val: v, Err: err, Shared: shared}
	})
	if !started {
		return nil, ErrClosed
	}
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// spawn runs fn in the background, unless the cache is closing, and tells
// whether it did. Close waits for every fn spawned.
func (c *Cache) spawn(fn func()) bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.closed {
		return false
	}
	c.bg.Go(fn)
	return true
}

// Close stops the cache from starting background work and waits for the
// work under way to end. Cancel the context given to New first to cut fills
// short: a cancelled fill removes its temporary file before it ends.
func (c *Cache) Close() {
	c.bgMu.Lock()
	c.closed = true
	c.bgMu.Unlock()
	c.bg.Wait()
}

// staleOr serves a cached value when the upstream failed for any reason
// but a definite "not found" (stale-if-error), logs that it did, and leaves
// the upstream alone for the quiet period.
func staleOr[T any](c *Cache, up *Upstream, cached *T, err error, what ...any) (*T, error) {
	var ue *upstream.Error
	if cached == nil || (errors.As(err, &ue) && ue.NotFound()) {
		return nil, err
	}
	c.mu.Lock()
	c.quiet[up.Name()] = c.now().Add(quietPeriod)
	c.mu.Unlock()
	c.noteStale(append(what, "upstream", up.Name(), "err", err)...)
	return cached, nil
}

// noteStale counts and logs a cached answer served in place of the
// upstream's.
func (c *Cache) noteStale(what ...any) {
	c.Stats.StaleServed.Add(1)
	c.log.Warn("upstream failed; serving cached copy", what...)
}

// isQuiet tells whether the upstream failed lately, so that a stale cached
// answer is served without asking it.
func (c *Cache) isQuiet(up *Upstream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now().Before(c.quiet[up.Name()])
}
