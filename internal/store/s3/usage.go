package s3

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
)

// recountAfter is how old the count of the blobs grows before Usage counts
// them again: this process keeps it up to date with its own commits and
// deletes, but other replicas write to the same bucket, and the cluster's
// leader evicts by this count. A count costs one LIST per 1,000 blobs.
const recountAfter = 10 * time.Second

// counter is the count of a bucket's blobs; Bucket.mu guards it.
//
// The first Usage lists the bucket, and waits for it, as do calls made
// while no count has succeeded. After that, a Usage that finds the count
// older than recountAfter returns it as it is, and starts a recount in the
// background, which replaces it when done: the listing of 100,000 blobs
// takes 100 requests, too long to keep a caller (an eviction, a gauge)
// waiting for a number that other replicas make approximate anyway.
//
// A count lists the blobs in key order (S3 lists keys in ascending order)
// into tally; walked is the last key it reached. A commit or delete
// meanwhile adjusts tally when it is done if the listing had passed its key
// before it began (the listing counted the old state), and otherwise notes
// its digest in changed: the listing skips those, and at its end adds what
// the bucket holds for them. Changes under way when a count begins are in
// changed from the start.
type counter struct {
	usage   store.Usage // of the last count, with this process's changes since
	counted time.Time   // when the last count that succeeded began; zero: none yet
	running *recount    // the count under way, if any
	tally   store.Usage // the running count's
	walked  string
	listed  bool // the running count has listed every key
	changed map[digest.Digest]bool
	pending map[digest.Digest]bool // blobs a commit or delete is changing
}

// recount is a count of the blobs.
type recount struct {
	done chan struct{} // closed when the count is over
	err  error         // its outcome, set before done is closed
}

// Usage implements store.Content.
func (c content) Usage(ctx context.Context) (store.Usage, error) {
	c.mu.Lock()
	if c.running == nil && (c.counted.IsZero() || time.Since(c.counted) > recountAfter) {
		c.startCount()
	}
	run, u, known := c.running, c.usage, !c.counted.IsZero()
	c.mu.Unlock()
	if known {
		return u, nil
	}
	select {
	case <-run.done:
	case <-ctx.Done():
		return store.Usage{}, ctx.Err()
	}
	if run.err != nil {
		return store.Usage{}, run.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.usage, nil
}

// startCount starts a count of the blobs, in the background, under the
// bucket's context: a caller that stops waiting does not stop it for the
// others. Called with mu held.
func (b *Bucket) startCount() {
	run := &recount{done: make(chan struct{})}
	b.running, b.tally, b.walked, b.listed = run, store.Usage{}, "", false
	b.changed = maps.Clone(b.pending)
	if b.changed == nil {
		b.changed = map[digest.Digest]bool{}
	}
	b.bg.Go(func() { b.count(run) })
}

// count lists the blobs, and sets the usage from what it finds.
func (b *Bucket) count(run *recount) {
	began := time.Now()
	err := b.list(b.ctx, b.prefix+"blobs/", func(obj minio.ObjectInfo) error {
		d, ok := b.digestOf(obj.Key)
		if !ok {
			return nil
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		b.walked = obj.Key
		if !b.changed[d] {
			b.tally.Bytes += obj.Size
			b.tally.Count++
		}
		return nil
	})
	if err == nil {
		b.mu.Lock()
		b.listed = true
		changed := slices.Collect(maps.Keys(b.changed))
		b.mu.Unlock()
		err = b.settle(changed)
	}
	b.mu.Lock()
	if err == nil {
		b.usage, b.counted = b.tally, began
	} else if !b.counted.IsZero() {
		b.log.Warn("could not recount the blobs; keeping the last count", "err", err)
	}
	b.running, b.changed = nil, nil
	run.err = err
	b.mu.Unlock()
	close(run.done)
}

// settle adds to the count what the bucket holds of the blobs changed
// while it listed them. Each blob's turn is taken (lockBlob), so that no
// commit or delete of it runs between its stat and its count.
func (b *Bucket) settle(changed []digest.Digest) error {
	for _, d := range changed {
		unlock, err := b.lockBlob(b.ctx, d)
		if err != nil {
			return err
		}
		size, err := content{b}.Stat(b.ctx, d)
		held := err == nil
		if isNotFound(err) {
			err = nil
		}
		if err == nil {
			b.mu.Lock()
			if held {
				b.tally.Bytes += size
				b.tally.Count++
			}
			delete(b.changed, d)
			b.mu.Unlock()
		}
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// beginChange notes that a commit or delete is about to change blob d,
// stored under key; endChange, that it is done, with delta its effect on
// the count (none if it failed). The caller holds d's turn (lockBlob).
func (b *Bucket) beginChange(key string, d digest.Digest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = map[digest.Digest]bool{}
	}
	b.pending[d] = true
	if b.running != nil && !b.listed && key > b.walked {
		b.changed[d] = true // the listing has yet to reach it: settled at its end
	}
}

func (b *Bucket) endChange(d digest.Digest, delta store.Usage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.pending, d)
	b.usage.Bytes += delta.Bytes
	b.usage.Count += delta.Count
	if b.running != nil && !b.changed[d] { // the listing counted the old state
		b.tally.Bytes += delta.Bytes
		b.tally.Count += delta.Count
	}
}
