package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// deleteIfOurs deletes each of KEYS whose value is still the matching
// ARGV: a lock, lease or claim that lapsed and was taken by another
// replica is left to it.
var deleteIfOurs = redis.NewScript(`
for i, k in ipairs(KEYS) do
	if redis.call('GET', k) == ARGV[i] then redis.call('DEL', k) end
end
return 0`)

// takeOrRenew sets KEYS[1] to ARGV[1] for ARGV[2] ms if it is free or
// already ours, and tells whether it is ours now: one call both competes
// for the leader's lease and renews it, and takes it again at once from a
// Redis that restarted empty.
var takeOrRenew = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`)

// newToken returns a random value that tells our lock or lease from one
// that another replica (or an earlier one of ours) took.
func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Lock takes the lock name across the cluster for at most ttl (SET NX PX),
// and tells whether it did. unlock deletes it only if it is still ours:
// after ttl, another replica may hold it. While Redis is unreachable, or
// when a call to it fails, the lock is taken as if alone.
func (c *Cluster) Lock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool) {
	nop := func() {}
	if !c.up.Load() {
		return nop, true
	}
	// Redis takes a ttl in whole milliseconds, and none as no expiry: a
	// lock that never lapses must not come from a rounding.
	ttl = max(ttl, time.Millisecond)
	key, token := lockKey(name), newToken()
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	ok, err := c.rdb.SetNX(cctx, key, token, ttl).Result()
	if err != nil {
		return nop, ctx.Err() == nil // a caller gone takes nothing
	}
	if !ok {
		return nop, false
	}
	return c.releaser([]string{key}, []any{token}), true
}

// releaser returns a function that deletes keys if they still hold
// values, once however often it is called.
func (c *Cluster) releaser(keys []string, values []any) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			if c.up.Load() {
				c.release(keys, values)
			}
		})
	}
}

// release deletes keys that still hold values. It is bounded like every
// call, and runs under its own context: an unlock after the caller's
// context ended, or during Close, must still happen.
func (c *Cluster) release(keys []string, values []any) {
	ctx, cancel := c.callCtx(context.Background())
	defer cancel()
	deleteIfOurs.Run(ctx, c.rdb, keys, values...)
}

// releaseAll gives up, at Close, the leader's lease, this replica's claims
// and its registration, in one call.
func (c *Cluster) releaseAll() {
	keys := []string{leaderKey, replicaKey(c.name)}
	values := []any{c.leaderToken, c.self}
	c.claimMu.Lock()
	for d := range c.claims {
		keys = append(keys, fillKey(d))
		values = append(values, c.self)
	}
	c.claimMu.Unlock()
	c.release(keys, values)
}

// Leader tells whether this replica does the cluster's lifecycle work now.
// It answers from memory: true while it holds the leader's lease, or while
// Redis is unreachable (alone, it leads itself).
func (c *Cluster) Leader() bool {
	return !c.up.Load() || c.leading.Load()
}

// lead competes for the leader's lease, and renews it while it holds it,
// every leaseRenew: well within leaseTTL, so that a leader that lives
// keeps it, and one that dies loses it within leaseTTL.
func (c *Cluster) lead() {
	tick := time.NewTicker(c.t.leaseRenew)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		case <-c.leaderWake:
		}
		c.contend()
	}
}

// contend takes or renews the lease once. A failed call keeps what we had
// until the lease would have lapsed: by then another replica may lead.
func (c *Cluster) contend() {
	if !c.up.Load() {
		return // alone: Leader answers true without the lease
	}
	ctx, cancel := c.callCtx(c.ctx)
	defer cancel()
	ours, err := takeOrRenew.Run(ctx, c.rdb, []string{leaderKey}, c.leaderToken, c.t.leaseTTL.Milliseconds()).Bool()
	switch {
	case err != nil:
		ours = c.leading.Load() && time.Since(c.leaseAt) < c.t.leaseTTL
	case ours:
		c.leaseAt = time.Now()
	}
	if c.leading.Swap(ours) != ours {
		if ours {
			c.log.Info("leading the cluster")
		} else {
			c.log.Info("no longer leading the cluster")
		}
	}
}
