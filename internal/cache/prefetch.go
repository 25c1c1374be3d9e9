package cache

import (
	"encoding/json"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// prefetch starts filling an image manifest's config and layers in the
// background, at most c.prefetch at a time per upstream, so that the
// client's blob requests, which follow a few at a time, join fills already
// under way. Prefetch fills are ordinary fills: coalesced, verified, and
// subject to the upstream's limits.
func (c *Cache) prefetchBlobs(up *Upstream, repo string, body []byte) {
	if c.prefetch == 0 {
		return
	}
	var m v1.Manifest
	if json.Unmarshal(body, &m) != nil {
		return
	}
	var blobs []digest.Digest
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		// Foreign layers (with URLs) live elsewhere; bad digests are the
		// client's problem when it asks.
		if len(d.URLs) == 0 && d.Digest.Validate() == nil {
			blobs = append(blobs, d.Digest)
		}
	}
	if len(blobs) == 0 {
		return
	}
	slots := c.prefetchSlots(up)
	c.spawn(func() {
		for _, d := range blobs {
			select {
			case slots <- struct{}{}:
			case <-c.ctx.Done():
				return
			}
			f := c.startPrefetch(up, repo, d)
			if f == nil {
				<-slots
				continue
			}
			if !c.spawn(func() { <-f.ended; <-slots }) {
				<-slots
			}
		}
	})
}

// startPrefetch starts a fill of d unless it is stored or filling already.
func (c *Cache) startPrefetch(up *Upstream, repo string, d digest.Digest) *fill {
	if _, err := c.store.Stat(c.ctx, d); err == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.fills[d]; f != nil && !f.failed() {
		return nil
	}
	c.Stats.Prefetches.Add(1)
	return c.startFill(up, repo, d)
}

// prefetchSlots returns the semaphore that bounds an upstream's prefetches.
func (c *Cache) prefetchSlots(up *Upstream) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.slots[up.Name()]
	if s == nil {
		s = make(chan struct{}, c.prefetch)
		c.slots[up.Name()] = s
	}
	return s
}
