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
// They only use the room clients leave (see limiter): a prefetch waits for
// one of its source's slots, a client's fill never does. On a fast link, where a
// client asks for layers as fast as they come, prefetch stays out of its
// way; on a slow one, it keeps the link busy between the client's requests.
func (c *Cache) prefetchBlobs(src Source, repo string, body []byte) {
	if !c.prefetch {
		return
	}
	var m v1.Manifest
	if json.Unmarshal(body, &m) != nil {
		return
	}
	var blobs []v1.Descriptor
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		// Foreign layers (with URLs) live elsewhere; bad digests are the
		// client's problem when it asks.
		if len(d.URLs) == 0 && d.Digest.Validate() == nil {
			blobs = append(blobs, d)
		}
	}
	if len(blobs) == 0 {
		return
	}
	c.spawn(func() {
		for _, d := range blobs {
			if !c.conns.take(c.ctx, src.Name()) {
				return
			}
			if c.caps.acquire(c.ctx, src.Name(), -1) != nil {
				c.conns.give(src.Name())
				return
			}
			if !c.startPrefetch(src, repo, d.Digest, d.Size) {
				c.conns.give(src.Name())
				c.caps.release(src.Name())
			}
		}
	})
}

// startPrefetch starts a fill of d, of size bytes as its manifest says,
// which takes over the slot and the place in the source's cap its caller
// holds, unless d is stored or filling already.
func (c *Cache) startPrefetch(src Source, repo string, d digest.Digest, size int64) bool {
	if _, err := c.store.Content.Stat(c.ctx, d); err == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.fills[d]; f != nil && !f.failed() {
		return false
	}
	c.Stats.Prefetches.Add(1)
	c.startFill(src, repo, d, size, true, true)
	return true
}
