package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// Freeze keeps tag on the manifest it points to now, fetching the whole
// image first (every platform) if the cache does not hold it: until
// Unfreeze, the tag is answered from the store with no source request,
// whatever the source's tag does meanwhile, and what it points to is never
// evicted. progress, if not nil, follows the fetch.
func (c *Cache) Freeze(ctx context.Context, src Source, repo, tag string, progress func(WarmProgress)) (digest.Digest, error) {
	if progress == nil {
		progress = func(WarmProgress) {}
	}
	top, err := c.warmImage(ctx, WarmRequest{Source: src, Repo: repo}, tag, progress)
	if err != nil {
		return "", err
	}
	err = c.updateTag(ctx, src, repo, tag, func(rec *tagRecord) error {
		if rec.Digest != top.Digest && !rec.Frozen {
			rec.Previous = rec.Digest
		}
		if !rec.Frozen { // a tag frozen already stays where it is
			rec.Manifest = Manifest{Digest: top.Digest, MediaType: top.MediaType, Size: top.Size}
			rec.Checked = c.now()
		}
		rec.Frozen = true
		return nil
	})
	if err != nil {
		return "", err
	}
	c.log.Info("tag frozen", "upstream", src.Name(), "repo", repo, "tag", tag, "digest", top.Digest)
	return top.Digest, nil
}

// Unfreeze lets a frozen tag follow its source again: the next pull
// revalidates it.
func (c *Cache) Unfreeze(ctx context.Context, src Source, repo, tag string) (digest.Digest, error) {
	var was digest.Digest
	err := c.updateTag(ctx, src, repo, tag, func(rec *tagRecord) error {
		if !rec.Frozen {
			return fmt.Errorf("%w: %s/%s:%s is not frozen", oci.ErrNotFound, src.Name(), repo, tag)
		}
		rec.Frozen, rec.Checked, was = false, time.Time{}, rec.Digest
		return nil
	})
	if err == nil {
		c.log.Info("tag unfrozen", "upstream", src.Name(), "repo", repo, "tag", tag, "digest", was)
	}
	return was, err
}

// updateTag changes a stored tag record, ordered against revalidations.
func (c *Cache) updateTag(ctx context.Context, src Source, repo, tag string, change func(*tagRecord) error) error {
	key := tagKey(src.Name(), repo, tag)
	mu := c.tagLock(key)
	mu.Lock()
	defer mu.Unlock()
	rec := new(tagRecord)
	if err := c.getJSON(ctx, key, rec); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: the cache holds no tag %s/%s:%s", oci.ErrNotFound, src.Name(), repo, tag)
	} else if err != nil {
		return err
	}
	if err := change(rec); err != nil {
		return err
	}
	return c.putTag(ctx, key, rec)
}
