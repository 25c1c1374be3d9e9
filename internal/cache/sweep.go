package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// A sweep removes units from the store. It plans in memory what goes, from
// a catalog, then carries out the plan in three phases, each in parallel:
// the tag records, then the manifests' records, then the blobs (manifest
// bodies included). So a crash at any moment leaves only whole images: no
// manifest is listed whose blobs are gone. What a crash leaves behind (a
// blob whose manifest went) is listed by nothing, and the next eviction
// takes it.
//
// The catalog is a snapshot; the store moves on while the sweep runs. So
// each phase looks again before it removes: a tag record that changed (the
// tag moved, was frozen or revalidated), a manifest or blob pulled since
// the sweep began (storing a manifest counts as a pull of everything it
// lists), a blob a client reads: each stays, and with it what it planned to
// remove after it.
type sweep struct {
	c       *Cache
	cat     *catalog
	start   time.Time
	listers map[digest.Digest]int // the remaining manifests that list each blob

	// The plan, in order: a manifest before the manifests and blobs its
	// removal leaves unlisted.
	tags      []*catTag
	manifests []*catManifest
	blobs     []digest.Digest // manifest bodies included
	planned   int64           // the bytes of blobs
	// cause is, for each manifest and blob planned, the manifest whose
	// removal planned it ("" for a unit's root): if that one stays, so
	// does it.
	cause  map[digest.Digest]digest.Digest
	bodies map[digest.Digest]bool // the blobs that are manifests
	// kept are the manifests that the commit found changed, and keeps.
	kept map[digest.Digest]bool
	// force: a purge, which removes what it names even if it changed,
	// was just pulled or is being read (a reader reads on: Content
	// promises it).
	force bool

	mu      sync.Mutex // protects kept and removed while a phase runs
	removed Removed    // what went
}

func (c *Cache) newSweep(cat *catalog, start time.Time) *sweep {
	s := &sweep{c: c, cat: cat, start: start, listers: map[digest.Digest]int{},
		cause: map[digest.Digest]digest.Digest{}, bodies: map[digest.Digest]bool{}, kept: map[digest.Digest]bool{}}
	for _, m := range cat.manifests {
		for _, r := range m.refs {
			s.listers[r]++
		}
	}
	return s
}

// pulledSince tells whether d was served since the sweep began. (Content
// first seen by this sweep is dated at its start, not after.)
func (s *sweep) pulledSince(d digest.Digest) bool {
	if s.force {
		return false
	}
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
		s.blob(u.root, "")
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
		s.manifest(m, "")
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
func (s *sweep) manifest(m *catManifest, cause digest.Digest) {
	s.manifests = append(s.manifests, m)
	s.cause[m.digest] = cause
	delete(s.cat.manifests, m.digest)
	s.bodies[m.digest] = true
	s.plan(m.digest)
	for _, r := range m.refs {
		s.listers[r]--
		if child := s.cat.manifests[r]; child != nil {
			if child.parents--; child.parents == 0 && len(child.tags) == 0 && !s.pulledSince(r) {
				s.manifest(child, m.digest)
			}
			continue
		}
		s.blob(r, m.digest)
	}
}

// blob plans the removal of a blob no remaining manifest lists, unless a
// client reads it or pulled it since the sweep began.
func (s *sweep) blob(d, cause digest.Digest) {
	if s.listers[d] > 0 || s.inUse(d) || s.pulledSince(d) {
		return
	}
	if _, ok := s.cause[d]; !ok {
		s.cause[d] = cause
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

func (s *sweep) inUse(d digest.Digest) bool { return !s.force && s.c.pulled.inUse(d) }

// keeps tells whether d stays because what planned it stays.
func (s *sweep) keeps(d digest.Digest) bool {
	for x := s.cause[d]; x != ""; x = s.cause[x] {
		if s.kept[x] {
			return true
		}
	}
	return false
}

// removeParallel is how many removals of a phase run at once: the
// filesystem unlinks about twice as fast with several under way.
const removeParallel = 8

// commit carries out the plan, phase after phase; a phase that fails
// stops the sweep before the next.
func (s *sweep) commit(ctx context.Context) error {
	err := phase(ctx, s.tags, func(ctx context.Context, t *catTag) error {
		removed, err := s.c.removeTag(ctx, t, s.force)
		if err != nil {
			return err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if removed {
			s.removed.Tags++
		} else {
			s.kept[t.digest] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Decided in plan order, parents before children, then removed.
	var manifests []*catManifest
	for _, m := range s.manifests {
		if s.kept[m.digest] || s.keeps(m.digest) || s.pulledSince(m.digest) {
			s.kept[m.digest] = true
			continue
		}
		manifests = append(manifests, m)
	}
	err = phase(ctx, manifests, func(ctx context.Context, m *catManifest) error {
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
	var blobs []digest.Digest
	for _, d := range s.blobs {
		// A blob a client began to read, or a manifest stored since
		// lists, stays, listed by nothing until the next eviction.
		if !s.kept[d] && !s.keeps(d) && !s.inUse(d) && !s.pulledSince(d) {
			blobs = append(blobs, d)
		}
	}
	return phase(ctx, blobs, func(ctx context.Context, d digest.Digest) error {
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
		if s.bodies[d] {
			// Again: a fetch of the manifest may have put it in memory
			// between its records' removal and now.
			s.c.memo.forget(manifestKey(d))
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

// removeTag removes t's record unless it changed since the catalog read
// it (or force), and tells whether it did.
func (c *Cache) removeTag(ctx context.Context, t *catTag, force bool) (bool, error) {
	key := tagKey(t.source, t.repo, t.tag)
	mu := c.tagLock(key)
	mu.Lock()
	defer mu.Unlock()
	var rec tagRecord
	if err := c.getJSON(ctx, key, &rec); errors.Is(err, store.ErrNotFound) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	if !force && (rec.Digest != t.digest || rec.Frozen != t.frozen || !rec.Checked.Equal(t.checked)) {
		return false, nil
	}
	if err := c.store.Records.Delete(ctx, key); err != nil {
		return false, err
	}
	c.memo.forget(key)
	return true, nil
}

// phase runs fn for each item, removeParallel at a time, until one fails.
func phase[T any](ctx context.Context, items []T, fn func(context.Context, T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(removeParallel)
	for _, it := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, it) })
	}
	return g.Wait()
}

func (s *sweep) count(change func(*Removed)) {
	s.mu.Lock()
	change(&s.removed)
	s.mu.Unlock()
}
