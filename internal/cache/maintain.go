package cache

import (
	"context"
	"time"
)

// How often Maintain does each of its jobs.
const (
	// flushEvery is how often pull times are written to the store: a
	// crash loses at most this much of them.
	flushEvery = 30 * time.Second
	// checkEvery is how often usage is compared to the bound when no
	// commit asks sooner, and the least time between two checks.
	checkEvery, checkGap = 10 * time.Second, 250 * time.Millisecond
	// expireEvery is how often idle content is looked for.
	expireEvery = 10 * time.Minute
)

// Maintain keeps the store within its limits and the pull times on disk,
// until ctx ends: it loads the stored pull times, in the background of
// serving, then evicts when a commit takes the content past the high
// watermark, expires idle content, and flushes pull times in batches. It
// returns after a last flush.
func (c *Cache) Maintain(ctx context.Context) {
	if err := c.pulled.load(ctx, c.store.Records); err != nil && ctx.Err() == nil {
		c.log.Warn("reading pull times", "err", err)
	}
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	check := time.NewTicker(checkEvery)
	defer check.Stop()
	lastExpiry := c.now()
	var short shortfall
	for {
		// A store past its bound at start is evicted at once.
		// In a cluster, eviction and expiry are the leader's work, done
		// once for all.
		idle := c.limits.MaxIdle > 0 && c.now().Sub(lastExpiry) >= min(expireEvery, c.limits.MaxIdle)
		if !c.leads() {
			lastExpiry = c.now() // a new leader expires after a period
		} else if over, usage := c.overHigh(ctx); idle || over && short.retry(c.now(), usage, c.limits.MaxSize) {
			if idle {
				lastExpiry = c.now()
			}
			if c.cluster != nil {
				// The other replicas' pull times, flushed to the store.
				c.FlushPulls(ctx)
				if err := c.pulled.load(ctx, c.store.Records); err != nil && ctx.Err() == nil {
					c.log.Warn("reading pull times", "err", err)
				}
			}
			if _, err := c.Evict(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("eviction failed", "err", err)
			}
			if over, usage := c.overHigh(ctx); over {
				short = short.again(c.now(), usage)
			} else {
				short = shortfall{}
			}
		}
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			c.FlushPulls(fctx)
			return
		case <-flush.C:
			c.FlushPulls(ctx)
		case <-check.C:
		case <-c.committed:
			// Let more commits arrive before the next look.
			select {
			case <-time.After(checkGap):
			case <-ctx.Done():
			}
		}
	}
}

// leads tells whether this cache does the lifecycle work: alone, always;
// in a cluster, while it leads.
func (c *Cache) leads() bool { return c.cluster == nil || c.cluster.Leader() }

// overHigh tells whether the content is past the high watermark, and how
// much there is.
func (c *Cache) overHigh(ctx context.Context) (bool, int64) {
	if c.limits.MaxSize <= 0 {
		return false, 0
	}
	u, err := c.store.Content.Usage(ctx)
	return err == nil && float64(u.Bytes) > c.limits.High*float64(c.limits.MaxSize), u.Bytes
}

// shortBackoff is how long after a second eviction in a row that left the
// content past the high watermark (pinned content, or everything just
// pulled) the next waits, unless the content grows by a hundredth of the
// bound meanwhile: each eviction reads the whole catalog. After the first,
// the next check retries: content first seen by a sweep (after a restart)
// stays through it, and goes with the next.
const shortBackoff = time.Minute

// shortfall is how many evictions in a row fell short, and when and at
// what usage the last did.
type shortfall struct {
	times int
	until time.Time
	usage int64
}

func (s shortfall) again(now time.Time, usage int64) shortfall {
	s.times++
	s.usage = usage
	if s.times >= 2 {
		s.until = now.Add(shortBackoff)
	}
	return s
}

func (s shortfall) retry(now time.Time, usage, maxSize int64) bool {
	return s.until.IsZero() || now.After(s.until) || usage > s.usage+maxSize/100
}

// FlushPulls writes the pull times not yet stored.
func (c *Cache) FlushPulls(ctx context.Context) {
	if err := c.pulled.flush(ctx, c.store.Records, c.now()); err != nil && ctx.Err() == nil {
		c.log.Warn("writing pull times", "err", err)
	}
}

// noteCommit tells Maintain that content grew.
func (c *Cache) noteCommit() {
	select {
	case c.committed <- struct{}{}:
	default:
	}
}
