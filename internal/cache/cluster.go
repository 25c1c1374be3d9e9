package cache

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// Cluster is what the replicas of one store share beyond the store itself
// (package cluster implements it over Redis): locks, so that work is done
// once across them, and the ownership of fills, so that a blob is fetched
// from its source once while clients of every replica get its bytes as
// they arrive. A cache without one is alone.
//
// While the cluster cannot be reached, every method answers at once as if
// the replica were alone (locks are taken, this replica leads, fills are
// its own), so that pulls never wait on it.
type Cluster interface {
	// Lock takes the lock name across the cluster for at most ttl, and
	// tells whether it did; unlock releases it early (a lock not taken
	// has a no-op unlock).
	Lock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool)
	// Leader tells whether this replica does the cluster's lifecycle work
	// now: eviction, idle expiry, scheduled warm-ups.
	Leader() bool
	// ClaimFill claims the fill of blob d for this replica (owner ""),
	// kept while the replica lives until release is called, or returns
	// the address of the replica that holds the claim.
	ClaimFill(ctx context.Context, d digest.Digest) (owner string, release func(), err error)
	// OpenFill reads blob d from off from the replica at owner, as its
	// fill brings the bytes (unverified here), and returns the length the
	// reader will give (-1 when unknown). An error that wraps
	// ErrNoFill means the owner neither fills nor holds d.
	OpenFill(ctx context.Context, owner string, d digest.Digest, off int64) (io.ReadCloser, int64, error)
}

// ErrNoFill: the replica asked neither fills nor holds the blob.
var ErrNoFill = errors.New("no fill of this blob here")

// PeerBlob returns blob d for another replica: from the fill under way
// here, or from the store. It never starts a fill: it is ErrNoFill when
// there is none.
func (c *Cache) PeerBlob(ctx context.Context, d digest.Digest) (*Blob, error) {
	c.mu.Lock()
	f := c.fills[d]
	c.mu.Unlock()
	if f != nil && !f.failed() {
		if err := f.waitFirstByte(ctx); err == nil {
			return &Blob{Size: f.size, digest: d, fill: f, content: c.store.Content, release: c.pulled.open(d, c.now())}, nil
		}
	}
	b, err := c.openStored(ctx, d)
	if err == nil && b == nil {
		err = ErrNoFill
	}
	return b, err
}

// once runs work that one replica of a cluster does for all (a tag's
// revalidation, a manifest's fetch): it returns ran true and an unlock to
// call when done, once this replica holds the lock name; or ran false once
// done reports that another replica's run stored the result. Alone, or if
// the other replica takes longer than documentTimeout, it runs.
func (c *Cache) once(ctx context.Context, name string, done func() bool) (unlock func(), ran bool) {
	if c.cluster == nil {
		return func() {}, true
	}
	deadline := c.now().Add(documentTimeout)
	for {
		if unlock, ok := c.cluster.Lock(ctx, name, documentTimeout); ok {
			return unlock, true
		}
		if done() {
			return nil, false
		}
		if c.now().After(deadline) || ctx.Err() != nil {
			return func() {}, true
		}
		select {
		case <-time.After(onceWait):
		case <-ctx.Done():
		}
	}
}

// onceWait is how often a replica looks whether another one's run of the
// same work has stored its result.
const onceWait = 50 * time.Millisecond
