package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"
)

// claim sets KEYS[1] to ARGV[1] for ARGV[2] ms if it is free or already
// ours, and returns "" then, else the owner it holds. A claim that holds
// our own address but that this process does not know is an earlier life
// of this replica's (killed, restarted at the same address): it is ours.
var claim = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return '' end
return v`)

// renew extends each of KEYS that holds ARGV[1] to ARGV[2] ms, and takes
// again those that are free: Redis may have restarted empty, or we may
// have claimed while alone. Those that another replica holds are left.
var renew = redis.NewScript(`
for _, k in ipairs(KEYS) do
	local v = redis.call('GET', k)
	if v == ARGV[1] then redis.call('PEXPIRE', k, ARGV[2])
	elseif not v then redis.call('SET', k, ARGV[1], 'PX', ARGV[2]) end
end
return 0`)

// ClaimFill claims the fill of blob d for this replica (owner ""), or
// returns the base URL of the replica that holds the claim. The claim is
// renewed while held, in one loop for all of them (renewClaims), and lapses
// within claimTTL of this replica's death. While Redis is unreachable, or
// when the call fails, the fill is ours as if alone; the claim is then
// written to Redis when it returns.
func (c *Cluster) ClaimFill(ctx context.Context, d digest.Digest) (owner string, release func(), err error) {
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	if c.up.Load() {
		cctx, cancel := c.callCtx(ctx)
		owner, err := claim.Run(cctx, c.rdb, []string{fillKey(d)}, c.self, c.t.claimTTL.Milliseconds()).Text()
		cancel()
		if err == nil && owner != "" {
			return owner, func() {}, nil
		}
		if err != nil && ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
	}
	c.claimMu.Lock()
	c.claims[d]++
	c.claimMu.Unlock()
	var once sync.Once
	return "", func() { once.Do(func() { c.releaseClaim(d) }) }, nil
}

// releaseClaim ends one hold of this replica's claim on d, and deletes the
// claim in Redis with the last one. (A new claim of d taken between the
// two is deleted with it; the next renewal round writes it again.)
func (c *Cluster) releaseClaim(d digest.Digest) {
	c.claimMu.Lock()
	c.claims[d]--
	last := c.claims[d] == 0
	if last {
		delete(c.claims, d)
	}
	c.claimMu.Unlock()
	if !last || !c.up.Load() {
		return
	}
	c.renewMu.RLock()
	defer c.renewMu.RUnlock()
	c.release([]string{fillKey(d)}, []any{c.self})
}

// renewClaims renews this replica's claims every claimRenew, well within
// claimTTL. A round holds renewMu from its snapshot of the claims to its
// reply, so that a claim released meanwhile is deleted after the round,
// never written again by it.
func (c *Cluster) renewClaims() {
	tick := time.NewTicker(c.t.claimRenew)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		case <-c.claimsWake:
		}
		if c.up.Load() {
			c.renewRound()
		}
	}
}

func (c *Cluster) renewRound() {
	c.renewMu.Lock()
	defer c.renewMu.Unlock()
	c.claimMu.Lock()
	keys := make([]string, 0, len(c.claims))
	for d := range c.claims {
		keys = append(keys, fillKey(d))
	}
	c.claimMu.Unlock()
	if len(keys) == 0 {
		return
	}
	ctx, cancel := c.callCtx(c.ctx)
	defer cancel()
	renew.Run(ctx, c.rdb, keys, c.self, c.t.claimTTL.Milliseconds())
}

// offsetHeader says where the body of a 206 from a peer starts, when the
// blob's size is not known yet and Content-Range cannot say it (see
// peer.go).
const offsetHeader = "Entrepot-Offset"

// peerClient reads fills from other replicas.
type peerClient struct {
	http.Client
	auth string // the Authorization header; never logged, never in an error
}

func newPeerClient(secret string) *peerClient {
	return &peerClient{
		auth: "Bearer " + secret,
		Client: http.Client{
			// No overall timeout: a body streams for as long as the
			// owner's fill runs. The caller's context ends it.
			Transport: &http.Transport{
				Proxy:                 nil, // replicas talk directly
				DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   5 * time.Second,
				ResponseHeaderTimeout: 10 * time.Second,
				IdleConnTimeout:       90 * time.Second,
				MaxIdleConnsPerHost:   16,
				ForceAttemptHTTP2:     true,
			},
			// A redirect would carry the secret elsewhere: a 3xx is
			// an error like any unexpected answer.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// OpenFill reads blob d from off from the replica at owner (a base URL as
// ClaimFill returns it), as its fill brings the bytes, and returns the
// length the reader will give (-1 when unknown). A 404 is an error that
// wraps cache.ErrNoFill: the owner neither fills nor holds d.
func (c *Cluster) OpenFill(ctx context.Context, owner string, d digest.Digest, off int64) (io.ReadCloser, int64, error) {
	base, err := baseURL(owner)
	if err != nil {
		return nil, 0, fmt.Errorf("replica %q: %w", owner, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+PeerPath+"blobs/"+d.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", c.peers.auth)
	if off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	}
	resp, err := c.peers.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the fill of %s at replica %s: %w", d, base, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK && off == 0,
		resp.StatusCode == http.StatusPartialContent && rangeStart(resp.Header) == off:
		return resp.Body, resp.ContentLength, nil
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, 0, fmt.Errorf("replica %s, blob %s: %w", base, d, cache.ErrNoFill)
	}
	return nil, 0, fmt.Errorf("replica %s answered %s for blob %s from %d", base, resp.Status, d, off)
}

// rangeStart returns where the body of a 206 starts: from Content-Range
// ("bytes N-M/S"), else from offsetHeader; -1 when neither says.
func rangeStart(h http.Header) int64 {
	s := h.Get(offsetHeader)
	if cr, ok := strings.CutPrefix(h.Get("Content-Range"), "bytes "); ok {
		s, _, _ = strings.Cut(cr, "-")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}
