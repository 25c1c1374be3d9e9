package cluster

import (
	"context"
	"log/slog"
	"time"
)

// testTiming is defaultTiming, quicker: the same ratios of renewal to
// lifetime, so that the tests wait less for a lease or a claim to lapse.
var testTiming = timing{
	call:       500 * time.Millisecond,
	beat:       200 * time.Millisecond,
	replicaTTL: 2 * time.Second,
	leaseTTL:   2 * time.Second,
	leaseRenew: 500 * time.Millisecond,
	claimTTL:   1500 * time.Millisecond,
	claimRenew: 400 * time.Millisecond,
	poll:       time.Second,
}

// NewQuick is New with testTiming.
func NewQuick(ctx context.Context, cfg Config, log *slog.Logger) (*Cluster, error) {
	return newCluster(ctx, cfg, log, testTiming)
}

// Kill makes c stop as a replica killed with SIGKILL would: its loops end
// and its connections close, and nothing it holds in Redis is released.
func Kill(c *Cluster) {
	c.closeOnce.Do(func() {
		c.cancel()
		c.loops.Wait()
		c.rdb.Close()
	})
}
