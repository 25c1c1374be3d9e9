package cache

import (
	"errors"
	"io"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// A fill in a cluster: before fetching a blob from its source, a replica
// claims the fill (Cluster.ClaimFill). The replica that holds the claim
// fetches, stores and serves; the others relay its fill to their clients,
// reading it as it arrives there (Cluster.OpenFill) and verifying it
// themselves. If the owner dies, its claim lapses within seconds and a
// relaying replica takes the fill over, resuming at the byte where the
// relay stopped (download).

// errStored: the blob was stored while the fill was being opened.
var errStored = errors.New("stored meanwhile")

// claimWait bounds how long a fill waits for a claim held by a replica
// that does not answer (killed, and its claim not lapsed yet) before it
// fetches from the source itself.
const claimWait = 15 * time.Second

// fillClaim is a fill's standing in the cluster.
type fillClaim struct {
	relayed bool   // the bytes came from another replica's fill
	release func() // ends this replica's claim; nil: none held
}

// end releases the claim held, if any.
func (fc *fillClaim) end() {
	if fc.release != nil {
		fc.release()
		fc.release = nil
	}
}

// openFill opens blob f.digest from off, and returns the length the reader
// will give (-1 when unknown): from the source, unless another replica's
// fill holds the cluster's claim, which it is then read from. It is
// errStored when the blob turned out to be stored already.
func (c *Cache) openFill(src Source, f *fill, fc *fillClaim, off int64) (io.ReadCloser, int64, error) {
	if c.cluster == nil || fc.release != nil {
		return c.openSource(src, f, off)
	}
	deadline := c.now().Add(claimWait)
	for {
		owner, release, err := c.cluster.ClaimFill(c.ctx, f.digest)
		if err == nil && owner == "" {
			fc.release = release
			// Claimed: the last owner may have committed just before.
			if off == 0 {
				if _, err := c.store.Content.Stat(c.ctx, f.digest); err == nil {
					return nil, 0, errStored
				}
			}
			return c.openSource(src, f, off)
		}
		if err == nil {
			r, n, err := c.cluster.OpenFill(c.ctx, owner, f.digest, off)
			if err == nil {
				fc.relayed = true
				return r, n, nil
			}
			if errors.Is(err, ErrNoFill) {
				// The owner's fill ended: stored, or failed (then its
				// claim goes, and the next round claims it).
				if r, n, err := c.openStoredAt(f.digest, off); r != nil || err != nil {
					return r, n, err
				}
			}
			c.log.Debug("reading another replica's fill", "replica", owner, "digest", f.digest, "err", err)
		}
		if c.ctx.Err() != nil {
			return nil, 0, c.ctx.Err()
		}
		if c.now().After(deadline) {
			c.log.Warn("the replica filling a blob does not answer; fetching it from the source", "replica", owner, "digest", f.digest)
			return c.openSource(src, f, off)
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-c.ctx.Done():
		}
	}
}

// openStoredAt opens stored blob d at off for a fill that was reading it
// from another replica: errStored when the fill has not begun, nil and no
// error when d is not stored.
func (c *Cache) openStoredAt(d digest.Digest, off int64) (io.ReadCloser, int64, error) {
	if off == 0 {
		if _, err := c.store.Content.Stat(c.ctx, d); err == nil {
			return nil, 0, errStored
		}
		return nil, 0, nil
	}
	r, size, err := c.store.Content.Open(c.ctx, d, off)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	return r, size - off, err
}

// commitWait bounds how long a replica that relayed a fill waits for the
// owner's commit before it commits the blob itself.
const commitWait = 10 * time.Second

// awaitCommit waits until blob d is stored (by the replica whose fill was
// relayed), for at most commitWait: the commit that follows then finds it
// there and stores nothing again.
func (c *Cache) awaitCommit(d digest.Digest) {
	deadline := c.now().Add(commitWait)
	for c.now().Before(deadline) && c.ctx.Err() == nil {
		if _, err := c.store.Content.Stat(c.ctx, d); err == nil {
			return
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-c.ctx.Done():
		}
	}
}
