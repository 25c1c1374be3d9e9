// Package cache is the fill-once pull-through cache: the one place that
// decides whether a request is a hit, joins a fill under way, or starts one.
// It is policy over two seams: a Source (the upstream registry, or any
// stand-in that speaks the registry protocol) and a store.Store.
//
// Blobs are filled by streaming: the first request starts one fetch from
// the source, its bytes go to the spool and to every client that asks
// meanwhile, and the digest is verified before the blob is committed to the
// store's content (fill.go, blob.go). Manifests, tags, referrers and tag
// lists are small documents fetched once per key through a singleflight
// group and revalidated per their source's TTL, with stale-if-error
// (manifest.go, document.go). Before any of that, each source's
// approved-images policy decides whether the image may be served at all
// (approval.go).
package cache

import (
	"context"
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/singleflight"
)

// Source is a registry the cache fills from, at the level of the registry
// protocol: *upstream.Client is one; a peer replica, a fallback mirror or a
// test double can be another. Errors for which errors.Is(err,
// oci.ErrNotFound) are definite answers; any other error is a failure,
// which the cache covers with what it holds (stale-if-error).
type Source interface {
	// Name is the source's configured name, e.g. "docker.io".
	Name() string
	// TTL is how long a tag, a tag list or a referrers answer of the
	// source stays fresh.
	TTL() time.Duration
	// Failing tells whether the source failed lately or refuses calls
	// for now (a 429's Retry-After), so that a cached answer is served
	// without asking it.
	Failing() bool

	// Resolve asks what a manifest reference (tag or digest) points to,
	// without the body: Digest "" when the source did not say, MediaType
	// "" when it did not say precisely, Size -1 when it did not say.
	Resolve(ctx context.Context, repo, ref string) (oci.Descriptor, error)
	// Manifest returns a manifest's body, unverified, and what the
	// source said of it (as for Resolve).
	Manifest(ctx context.Context, repo, ref string) ([]byte, oci.Descriptor, error)
	// StatBlob returns the size of blob d.
	StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error)
	// OpenBlob returns blob d from offset off, unverified, and the length
	// the reader will give (-1 when unknown).
	OpenBlob(ctx context.Context, repo string, d digest.Digest, off int64) (io.ReadCloser, int64, error)
	// Tags returns a page of a tag list (query holds n and last) and the
	// Link to the next page as the source wrote it.
	Tags(ctx context.Context, repo string, query url.Values) ([]byte, string, error)
	// Referrers returns the referrers index of manifest d; an error that
	// wraps oci.ErrUnsupported when the source lacks the referrers API.
	Referrers(ctx context.Context, repo string, d digest.Digest) ([]byte, error)
}

// ErrClosed: the cache is shutting down and starts no new fetches.
var ErrClosed = errors.New("cache is shutting down")

// documentTimeout bounds a fetch of a small document, beyond the source's
// own timeouts.
const documentTimeout = 60 * time.Second

// Cache serves blobs and manifests from the store, filling it from sources
// on a miss.
type Cache struct {
	store store.Store
	log   *slog.Logger
	now   func() time.Time
	// ctx is the lifetime of fills: they outlive the request that started
	// them, and end when the cache shuts down.
	ctx context.Context

	// Stats counts what the cache decided; read them with Load.
	Stats Stats
	// conns is each source's connection budget, which prefetches and
	// the parts of parallel fetches use (Options.Conns).
	conns *limiter
	// parallel is how each source's large blobs are fetched, by name.
	parallel map[string]Parallel
	// caps bound, per source, all its fills (MaxFills).
	caps *fillCaps
	// prefetch is off when false.
	prefetch bool
	// cluster is shared with the other replicas; nil: alone.
	cluster Cluster
	// approvals are the sources' policies by name; read-only after New.
	approvals map[string]*approval

	mu    sync.Mutex // protects fills
	fills map[digest.Digest]*fill

	docs   singleflight.Group // one fetch per manifest, tag or document key
	memo   *memo              // manifests and tag records in memory
	pulled *pulled            // when content was last served, and what is being read
	refs   refsCache          // what each stored manifest references
	limits Limits             // what Evict keeps the store within
	// committed wakes Maintain after a commit, to compare usage and bound.
	committed chan struct{}
	// sweepMu runs one eviction or purge at a time.
	sweepMu sync.Mutex
	// evictMu protects lastShort, when eviction last logged falling
	// short of its target, for each of the two reasons.
	evictMu   sync.Mutex
	lastShort [2]time.Time
	// tagMu orders the writes of a tag record that read it first (a
	// revalidation, a freeze, a sweep's removal): one mutex per stripe of
	// tag keys (tagLock), so that a sweep's removals run in parallel.
	tagMu [64]sync.Mutex

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
	// Prefetch, unless 0, fills the blobs of a newly fetched image
	// manifest in the background, within the source's Conns.
	Prefetch int
	// Conns are the sources' connection budgets, by name (default 16):
	// a client's fill takes a connection while one is free and never
	// waits; prefetches wait for one; the extra parts of a parallel
	// fetch start only while one is free.
	Conns map[string]int
	// Parallel is how each source's large blobs are fetched, by name; a
	// source without one fetches every blob as one stream.
	Parallel map[string]Parallel
	// Limits bound the store; see Evict.
	Limits Limits
	// Policies are the sources' approved-images policies, by source
	// name. A source without one serves every image.
	Policies map[string]ImagePolicy
	// MaxFills bounds the blob fills under way per source, by name: a new
	// fill waits a moment for a place, then fails with a
	// *TooManyFillsError. A source without one is not bounded.
	MaxFills map[string]int
	// Cluster is shared with the other replicas on the store; nil: the
	// cache is alone.
	Cluster Cluster
}

// memoBytes bounds the manifests and tag records kept in memory: some
// thousands of manifests, enough for the images a fleet pulls.
const memoBytes = 32 << 20

// New returns a cache over s. ctx bounds the fills it runs.
func New(ctx context.Context, s store.Store, opt Options, log *slog.Logger) *Cache {
	approvals := map[string]*approval{}
	for name, p := range opt.Policies {
		approvals[name] = newApproval(name, p)
	}
	return &Cache{
		approvals: approvals,
		cluster:   opt.Cluster,
		store:     s,
		log:       log,
		now:       time.Now,
		ctx:       ctx,
		prefetch:  opt.Prefetch > 0,
		limits:    opt.Limits,
		committed: make(chan struct{}, 1),
		conns:     newLimiter(opt.Conns),
		parallel:  opt.Parallel,
		caps:      newFillCaps(opt.MaxFills),
		memo:      newMemo(memoBytes),
		pulled:    newPulled(),
		fills:     map[digest.Digest]*fill{},
	}
}

// flight runs fn once for all concurrent callers with the same key. fn runs
// under the cache's context, not the first caller's, so one impatient client
// cannot fail the others; each caller waits on its own context. fn says
// what it did (a Result), which is noted for each caller: a miss is a join
// for those who shared it.
func (c *Cache) flight(ctx context.Context, key string, fn func(context.Context) (any, Result, error)) (any, error) {
	type flown struct {
		v any
		r Result
	}
	ch := make(chan singleflight.Result, 1)
	started := c.spawn(func() {
		v, err, shared := c.docs.Do(key, func() (any, error) {
			fctx, cancel := context.WithTimeout(c.ctx, documentTimeout)
			defer cancel()
			v, r, err := fn(fctx)
			return flown{v, r}, err
		})
		ch <- singleflight.Result{Val: v, Err: err, Shared: shared}
	})
	if !started {
		return nil, ErrClosed
	}
	select {
	case res := <-ch:
		f, _ := res.Val.(flown)
		if res.Err == nil {
			if f.r == Miss && res.Shared {
				f.r = Joined
			}
			note(ctx, f.r)
		}
		return f.v, res.Err
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

// staleOr serves a cached value when the source failed for any reason but
// a definite "not found" (stale-if-error), and logs that it did.
func staleOr[T any](c *Cache, src Source, cached *T, err error, what ...any) (*T, error) {
	if cached == nil || errors.Is(err, oci.ErrNotFound) {
		return nil, err
	}
	c.noteStale(append(what, "upstream", src.Name(), "err", err)...)
	return cached, nil
}

// budgeted is a Source with a rate-limit budget (*upstream.Client).
type budgeted interface {
	// Saving tells whether the remaining budget is under its floor: it
	// is kept for content the cache does not hold.
	Saving() bool
}

// spare tells whether src's budget is to be spared: a cached tag is then
// served without revalidation.
func (c *Cache) spare(src Source) bool {
	b, ok := src.(budgeted)
	return ok && b.Saving()
}

// noteStale counts and logs a cached answer served in place of the
// source's.
func (c *Cache) noteStale(what ...any) {
	c.Stats.StaleServed.Add(1)
	c.log.Warn("upstream failed; serving cached copy", what...)
}

// tagLock is the mutex that orders the read-and-write updates of the tag
// record under key.
func (c *Cache) tagLock(key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &c.tagMu[h.Sum32()%uint32(len(c.tagMu))]
}
