package cache

import (
	"encoding/json"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// prefetchBlobs starts filling an image manifest's config and layers in
// the background, so that the client's blob requests, which follow a few at
// a time, join fills already under way. Prefetch fills are ordinary fills:
// coalesced, verified, and subject to the upstream's limits.
//
// They only use the room clients leave: each upstream has c.prefetch
// slots, which every fill takes while one is free (a client's fill never
// waits for one), and a prefetch waits for one. On a fast link, where a
// client asks for layers as fast as they come, prefetch stays out of its
// way; on a slow one, it keeps the link busy between the client's requests.
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
	slots := c.slotsOf(up)
	c.spawn(func() {
		for _, d := range blobs {
			select {
			case slots <- struct{}{}:
			case <-c.ctx.Done():
				return
			}
			if !c.startPrefetch(up, repo, d) {
				<-slots
			}
		}
	})
}

// startPrefetch starts a fill of d, which takes over the slot its caller
// holds, unless d is stored or filling already.
func (c *Cache) startPrefetch(up *Upstream, repo string, d digest.Digest) bool {
	if _, err := c.store.Stat(c.ctx, d); err == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.fills[d]; f != nil && !f.failed() {
		return false
	}
	c.Stats.Prefetches.Add(1)
	c.startFill(up, repo, d, true)
	return true
}

// slotsOf returns the semaphore of an upstream's fills, nil when prefetch
// is off.
func (c *Cache) slotsOf(up *Upstream) chan struct{} {
	if c.prefetch == 0 {
		return nil
	}
	c.slotsMu.Lock()
	defer c.slotsMu.Unlock()
	s := c.slots[up.Name()]
	if s == nil {
		s = make(chan struct{}, c.prefetch)
		c.slots[up.Name()] = s
	}
	return s
}
