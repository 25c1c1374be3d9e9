package cache

import (
	"context"
	"slices"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
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
	c.pulled.retain(func(d digest.Digest) bool { _, ok := cat.blobs[d]; return ok })
	units := c.units(cat, start)
	sweep := c.newSweep(cat, start)
	if lim.MaxIdle > 0 {
		// Tags whose manifest was never fetched (clients that only ask
		// HEAD, like Renovate) or went: records nobody used for MaxIdle.
		for _, t := range cat.tags {
			if _, held := cat.manifests[t.digest]; !held && !t.frozen && start.Sub(t.checked) > lim.MaxIdle &&
				!c.matchesPin(t.String()+":"+t.tag) {
				sweep.tag(t)
			}
		}
	}
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
		c.noteShort(cat, units, lim, need-sweep.removed.Bytes)
	}
	if r := sweep.removed; r != (Removed{}) {
		c.log.Info("evicted", "tags", r.Tags, "manifests", r.Manifests, "blobs", r.Blobs, "bytes", r.Bytes,
			"took", c.now().Sub(start).Round(time.Millisecond))
	}
	return sweep.removed, nil
}

// units lists cat's units, least recently pulled first. A unit is as
// recent as the latest pull of its manifests and of the blobs only it
// lists (a lazy puller reads layers long after their manifest); it is
// pinned when any of its manifests is.
func (c *Cache) units(cat *catalog, now time.Time) []unit {
	listers := map[digest.Digest]int{}
	for _, m := range cat.manifests {
		for _, r := range m.refs {
			listers[r]++
		}
	}
	var units []unit
	var fresh []digest.Digest // unseen manifests of indexes
	for d, m := range cat.manifests {
		if len(m.tags) == 0 && m.parents > 0 {
			continue // goes with the index that lists it
		}
		u := unit{root: d, tags: slices.Clone(m.tags)} // a sweep removes from m.tags in place
		u.last, u.unseen = c.lastPulled(d, now)
		cat.walkManifests(m, func(x *catManifest) {
			if x != m {
				if t, unseen := c.lastPulled(x.digest, now); unseen {
					fresh = append(fresh, x.digest)
				} else {
					u.last = latest(u.last, t)
				}
			}
			u.pinned = u.pinned || c.pinned(x)
			for _, r := range x.refs {
				if _, isManifest := cat.manifests[r]; !isManifest && listers[r] == 1 {
					if t, ok := c.pulled.last(r); ok {
						u.last = latest(u.last, t)
					}
				}
			}
		})
		units = append(units, u)
	}
	for d := range cat.blobs {
		if _, ok := cat.manifests[d]; !ok && listers[d] == 0 {
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

// noteShort logs, at most once an hour for each reason, that eviction
// could not reach the low watermark, and why: pinned content alone is past
// it, or what is left was just pulled, first seen, or is being read.
func (c *Cache) noteShort(cat *catalog, units []unit, lim Limits, short int64) {
	held := map[digest.Digest]bool{}
	for _, u := range units {
		if u.pinned {
			cat.closure(u.root, held)
		}
	}
	pinned := cat.size(held)
	overPinned := pinned > int64(lim.Low*float64(lim.MaxSize))
	now := c.now()
	c.evictMu.Lock()
	last := &c.lastShort[0]
	if overPinned {
		last = &c.lastShort[1]
	}
	if now.Sub(*last) < time.Hour {
		c.evictMu.Unlock()
		return
	}
	*last = now
	c.evictMu.Unlock()
	if overPinned {
		c.log.Warn("pinned and frozen content alone exceeds the storage bound; keeping it and serving",
			"pinned_bytes", pinned, "max_size", lim.MaxSize)
		return
	}
	c.log.Warn("eviction fell short of the low watermark: what is left was just pulled, is new since the last start, or is being read; the next eviction takes more",
		"short_bytes", short)
}
