package registry_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// Twenty real clients pull while the store is evicted, again and again,
// far below what they pull: every pull gets every byte right (validated
// against its digests), and what is evicted is fetched again.
func TestEvictWhile20ClientsPull(t *testing.T) {
	o := newOrigin(t)
	const images = 8
	for i := range images {
		push(t, o, fmt.Sprintf("library/app:%d", i), 64<<10, 3)
	}
	pushIndex(t, o, "library/multi:1")
	c := newCache(t, o, options{limits: cache.Limits{MaxSize: 256 << 10, High: 0.5, Low: 0.1}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var evictions, removed atomic.Int64
	evicting := make(chan struct{})
	go func() {
		defer close(evicting)
		for ctx.Err() == nil {
			r, err := c.cache.Evict(ctx)
			if err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
			evictions.Add(1)
			removed.Add(int64(r.Blobs))
		}
	}()
	var wg sync.WaitGroup
	for client := range 20 {
		wg.Go(func() {
			for i := range 6 {
				repo := fmt.Sprintf("library/app:%d", (client+i)%images)
				if i%3 == 2 {
					repo = "library/multi:1"
				}
				ref, _ := name.ParseReference(c.host()+"/"+repo, name.Insecure)
				if err := pullAndValidate(ref); err != nil {
					t.Errorf("client %d, %s: %v", client, repo, err)
					return
				}
			}
		})
	}
	wg.Wait()
	cancel()
	<-evicting
	if evictions.Load() < 2 || removed.Load() == 0 {
		t.Fatalf("%d evictions removed %d blobs; want them to run and remove", evictions.Load(), removed.Load())
	}
}

// pullAndValidate pulls an image, or every image of an index, and checks
// every byte against its digest.
func pullAndValidate(ref name.Reference) error {
	desc, err := remote.Get(ref)
	if err != nil {
		return err
	}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return err
		}
		return validate.Image(img)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, child := range m.Manifests {
		img, err := idx.Image(child.Digest)
		if err == nil {
			err = validate.Image(img)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", child.Digest, err)
		}
	}
	return nil
}
