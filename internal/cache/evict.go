package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// Limits are what the store is kept within. The zero value keeps
// everything.
type Limits struct {
	// MaxSize bounds the content's bytes; 0: no bound. Past High·MaxSize,
	// the least recently pulled content is evicted down to Low·MaxSize.
	MaxSize   int64
	High, Low float64
	// MaxIdle removes content nobody pulled for this long; 0: never.
	MaxIdle time.Duration
	// Pins are patterns (oci.MatchPattern) of content never evicted.
	Pins []string
}

// A unit is what eviction removes at once, the least recently pulled
// first: a manifest with every tag that points to it (with the manifests
// and blobs only it needs), an untagged manifest no index lists, or a blob
// no manifest lists.
type unit struct {
	root   digest.Digest
	tags   []*catTag
	last   time.Time // the latest pull of the root or of an index's manifests
	pinned bool
	// unseen: no pull of the root was known before this sweep (content
	// stored since the last flush of pull times, or the last restart); it
	// ages from now, and stays this time.
	unseen bool
}

// Removed counts what an eviction or purge took from the store.
type Removed struct {
	Tags      int `json:"tags"`
	Manifests int `json:"manifests"`
	// Blobs counts the configs and layers (and blobs no manifest
	// listed); Bytes is everything removed, manifests included.
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
}

// Evict brings the store within its limits: down to the low watermark when
// past the high one, and without what nobody pulled for MaxIdle. It never
// removes a blob a stored manifest still needs, pinned or frozen content,
// content pulled since it began, or a blob a client is reading.
func (c *Cache) Evict(ctx context.Context) (Removed, error) {
	c.sweepMu.Lock()
	defer c.sweepMu.Unlock()
	lim := c.limits
	start := c.now()
	var need int64
	if lim.MaxSize > 0 {
		u, err := c.store.Content.Usage(ctx)
		if err != nil {
			return Removed{}, err
		}
		if float64(u.Bytes) > lim.High*float64(lim.MaxSize) {
			need = u.Bytes - int64(lim.Low*float64(lim.MaxSize))
		}
	}
	if need <= 0 && lim.MaxIdle <= 0 {
		return Removed{}, nil
	}
	cat, err := c.readCatalog(ctx)
	if err != nil {
		return Removed{}, err
	}
	units := c.units(cat, start)
	sweep := c.newSweep(cat, start)
	for _, u := range units {
		expired := lim.MaxIdle > 0 && start.Sub(u.last) > lim.MaxIdle
		if !u.pinned && (sweep.planned < need || expired) {
			sweep.unit(u)
		}
	}
	if err := sweep.commit(ctx); err != nil {
		return sweep.removed, err
	}
	if sweep.removed.Bytes < need {
		c.notePinned(cat, units, lim, need-sweep.removed.Bytes)
	}
	if r := sweep.removed; r != (Removed{}) {
		c.log.Info("evicted", "tags", r.Tags, "manifests", r.Manifests, "blobs", r.Blobs, "bytes", r.Bytes,
			"took", c.now().Sub(start).Round(time.Millisecond))
	}
	return sweep.removed, nil
}

// units lists cat's units, least recently pulled first.
func (c *Cache) units(cat *catalog, now time.Time) []unit {
	listed := map[digest.Digest]bool{}
	for _, m := range cat.manifests {
		for _, r := range m.refs {
			listed[r] = true
		}
	}
	var units []unit
	var fresh []digest.Digest // unseen manifests of indexes
	for d, m := range cat.manifests {
		if len(m.tags) == 0 && m.parents > 0 {
			continue // goes with the index that lists it
		}
		u := unit{root: d, tags: m.tags}
		u.last, u.unseen = c.lastPulled(d, now)
		for _, r := range m.refs {
			if _, ok := cat.manifests[r]; ok {
				if t, unseen := c.lastPulled(r, now); unseen {
					fresh = append(fresh, r)
				} else {
					u.last = latest(u.last, t)
				}
			}
		}
		u.pinned = c.pinned(m)
		units = append(units, u)
	}
	for d := range cat.blobs {
		if _, ok := cat.manifests[d]; !ok && !listed[d] {
			u := unit{root: d}
			u.last, u.unseen = c.lastPulled(d, now)
			units = append(units, u)
		}
	}
	// What was unseen ages from now.
	for _, u := range units {
		if u.unseen {
			fresh = append(fresh, u.root)
		}
	}
	for _, d := range fresh {
		c.pulled.seen(d, now)
	}
	slices.SortFunc(units, func(a, b unit) int { return a.last.Compare(b.last) })
	return units
}

// lastPulled is when d was last served; for content never seen served,
// now, and unseen is true.
func (c *Cache) lastPulled(d digest.Digest, now time.Time) (t time.Time, unseen bool) {
	if t, ok := c.pulled.last(d); ok {
		return t, false
	}
	return now, true
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// pinned tells whether a pin or a frozen tag holds manifest m.
func (c *Cache) pinned(m *catManifest) bool {
	for _, t := range m.tags {
		if t.frozen || c.matchesPin(t.String()+":"+t.tag) || c.matchesPin(t.String()+"@"+m.digest.String()) {
			return true
		}
	}
	for _, r := range m.repos {
		if c.matchesPin(r.String() + "@" + m.digest.String()) {
			return true
		}
	}
	return false
}

func (c *Cache) matchesPin(image string) bool {
	for _, p := range c.limits.Pins {
		if oci.MatchPattern(p, image) {
			return true
		}
	}
	return false
}

// notePinned logs, at most once an hour, that eviction could not reach the
// low watermark, and why: pinned content alone is past it, or clients hold
// what would go.
func (c *Cache) notePinned(cat *catalog, units []unit, lim Limits, short int64) {
	now := c.now()
	c.evictMu.Lock()
	if now.Sub(c.lastShort) < time.Hour {
		c.evictMu.Unlock()
		return
	}
	c.lastShort = now
	c.evictMu.Unlock()
	held := map[digest.Digest]bool{}
	for _, u := range units {
		if u.pinned {
			cat.closure(u.root, held)
		}
	}
	pinned := cat.size(held)
	if pinned > int64(lim.Low*float64(lim.MaxSize)) {
		c.log.Warn("pinned and frozen content alone exceeds the storage bound; keeping it and serving",
			"pinned_bytes", pinned, "max_size", lim.MaxSize)
		return
	}
	c.log.Warn("eviction fell short of the low watermark: what is left is being read or was just pulled",
		"short_bytes", short)
}

// A sweep removes units from the store. It plans first, in memory, what
// goes, then removes it in three phases, each in parallel: the tag
// records, then the manifests' records, then the blobs (manifest bodies
// included). So a crash at any moment leaves only whole images: no
// manifest is listed whose blobs are gone. What a crash leaves behind (a
// blob whose manifest went) is listed by nothing, and the next eviction
// takes it.
type sweep struct {
	c       *Cache
	cat     *catalog
	start   time.Time
	listers map[digest.Digest]int // the remaining manifests that list each blob
	bodies  map[digest.Digest]bool // the blobs that are manifests the plan removes

	// The plan.
	tags      []*catTag
	manifests []*catManifest
	blobs     []digest.Digest // manifest bodies included
	planned   int64           // the bytes of blobs

	removed Removed // what went; updated by the phases' goroutines under mu
	mu      sync.Mutex
}

func (c *Cache) newSweep(cat *catalog, start time.Time) *sweep {
	s := &sweep{c: c, cat: cat, start: start, listers: map[digest.Digest]int{}, bodies: map[digest.Digest]bool{}}
	for _, m := range cat.manifests {
		for _, r := range m.refs {
			s.listers[r]++
		}
	}
	return s
}

// pulledSince tells whether d was served since the sweep began: then its
// unit stays, as the catalog may no longer tell what needs it. (Content
// first seen by this sweep is dated at its start, not after.)
func (s *sweep) pulledSince(d digest.Digest) bool {
	t, ok := s.c.pulled.last(d)
	return ok && t.UnixMilli() > s.start.UnixMilli()
}

// unit plans the removal of u, unless it was pulled since the sweep began.
func (s *sweep) unit(u unit) {
	if u.unseen || s.pulledSince(u.root) {
		return
	}
	m := s.cat.manifests[u.root]
	if m == nil {
		s.blob(u.root)
		return
	}
	for _, r := range m.refs {
		if s.pulledSince(r) {
			return
		}
	}
	for _, t := range u.tags {
		s.tag(t)
	}
	if len(m.tags) == 0 && m.parents == 0 {
		s.manifest(m)
	}
}

// tag plans the removal of a tag record.
func (s *sweep) tag(t *catTag) {
	s.tags = append(s.tags, t)
	if m := s.cat.manifests[t.digest]; m != nil {
		m.tags = slices.DeleteFunc(m.tags, func(x *catTag) bool { return x == t })
	}
}

// manifest plans the removal of manifest m, and of what only it needed.
func (s *sweep) manifest(m *catManifest) {
	s.manifests = append(s.manifests, m)
	delete(s.cat.manifests, m.digest)
	s.bodies[m.digest] = true
	s.plan(m.digest)
	for _, r := range m.refs {
		s.listers[r]--
		if child := s.cat.manifests[r]; child != nil {
			if child.parents--; child.parents == 0 && len(child.tags) == 0 && !s.pulledSince(r) {
				s.manifest(child)
			}
			continue
		}
		s.blob(r)
	}
}

// blob plans the removal of a blob no remaining manifest lists, unless a
// client reads it or pulled it since the sweep began.
func (s *sweep) blob(d digest.Digest) {
	if s.listers[d] > 0 || s.c.pulled.inUse(d) || s.pulledSince(d) {
		return
	}
	s.plan(d)
}

func (s *sweep) plan(d digest.Digest) {
	size, held := s.cat.blobs[d]
	if !held {
		return
	}
	delete(s.cat.blobs, d)
	s.blobs = append(s.blobs, d)
	s.planned += size
}

// removeParallel is how many removals of a phase run at once: the
// filesystem unlinks about twice as fast with several under way.
const removeParallel = 8

// commit carries out the plan, phase after phase; a phase that fails
// stops the sweep before the next.
func (s *sweep) commit(ctx context.Context) error {
	err := s.phase(ctx, len(s.tags), func(ctx context.Context, i int) error {
		t := s.tags[i]
		key := tagKey(t.source, t.repo, t.tag)
		if err := s.c.store.Records.Delete(ctx, key); err != nil {
			return err
		}
		s.c.memo.forget(key)
		s.count(func(r *Removed) { r.Tags++ })
		return nil
	})
	if err != nil {
		return err
	}
	err = s.phase(ctx, len(s.manifests), func(ctx context.Context, i int) error {
		m := s.manifests[i]
		for _, r := range m.repos {
			if err := s.c.store.Records.Delete(ctx, linkKey(r.source, r.repo, m.digest)); err != nil {
				return err
			}
		}
		if err := s.c.store.Records.Delete(ctx, manifestKey(m.digest)); err != nil {
			return err
		}
		s.c.memo.forget(manifestKey(m.digest))
		s.c.refs.forget(m.digest)
		s.count(func(r *Removed) { r.Manifests++ })
		return nil
	})
	if err != nil {
		return err
	}
	return s.phase(ctx, len(s.blobs), func(ctx context.Context, i int) error {
		d := s.blobs[i]
		// A client may have begun to read it since the plan: it stays,
		// listed by nothing, for the next eviction.
		if s.c.pulled.inUse(d) || s.pulledSince(d) {
			return nil
		}
		size, err := s.c.store.Content.Stat(ctx, d)
		if err == nil {
			err = s.c.store.Content.Delete(ctx, d)
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("evict %s: %w", d, err)
		}
		s.c.pulled.forget(d)
		s.count(func(r *Removed) {
			if !s.bodies[d] {
				r.Blobs++
			}
			r.Bytes += size
		})
		return nil
	})
}

// phase runs fn for 0..n-1, removeParallel at a time, until one fails.
func (s *sweep) phase(ctx context.Context, n int, fn func(context.Context, int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(removeParallel)
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}
	return g.Wait()
}

func (s *sweep) count(change func(*Removed)) {
	s.mu.Lock()
	change(&s.removed)
	s.mu.Unlock()
}
