package upstream

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/config"
)

// Budget is an upstream's rate-limit budget as its last answer announced
// it, in the ratelimit-limit and ratelimit-remaining headers that Docker
// Hub sends (100;w=21600: 100 requests per 21,600 s), on HEADs too.
type Budget struct {
	Limit, Remaining int64
	Window           time.Duration
	// Seen is when the headers arrived; the zero time means never.
	Seen time.Time
	// Floor is the remaining budget under which cached tags are served
	// without revalidation, and Saving whether that is the case now.
	Floor  int64
	Saving bool
}

// budget is the client's record of its upstream's budget.
type budget struct {
	floor config.Floor

	mu   sync.Mutex // protects last and saving
	last Budget
	// saving is whether the last answer put the budget under its floor,
	// logged once each time it changes.
	saving bool
}

// noteBudget records the rate-limit headers of an answer, if it has them.
func (c *Client) noteBudget(h http.Header) {
	limit, window, ok := parseRateLimit(h.Get("Ratelimit-Limit"))
	remaining, _, ok2 := parseRateLimit(h.Get("Ratelimit-Remaining"))
	if !ok || !ok2 {
		return
	}
	b := &c.budget
	floor := b.floor.Of(limit)
	saving := remaining < floor
	b.mu.Lock()
	b.last = Budget{Limit: limit, Remaining: remaining, Window: window, Seen: c.now(), Floor: floor}
	changed := saving != b.saving
	b.saving = saving
	b.mu.Unlock()
	c.publish()
	switch {
	case changed && saving:
		c.log.Warn("upstream rate-limit budget under its floor: serving cached tags without revalidation, keeping the rest for content not cached",
			"upstream", c.name, "remaining", remaining, "limit", limit, "floor", b.floor.String(), "window", window)
	case changed:
		c.log.Info("upstream rate-limit budget above its floor again: revalidating tags", "upstream", c.name, "remaining", remaining, "limit", limit)
	}
}

// Budget returns the upstream's budget as last announced.
func (c *Client) Budget() Budget {
	b := &c.budget
	b.mu.Lock()
	last := b.last
	b.mu.Unlock()
	last = c.sharedBudget(last)
	last.Saving = c.saving(last)
	return last
}

// Saving tells whether the upstream's remaining budget is under its floor,
// so that cached tags are served without revalidation. A budget whose
// window has passed since it was announced counts as renewed.
func (c *Client) Saving() bool { return c.Budget().Saving }

func (c *Client) saving(b Budget) bool {
	if b.Seen.IsZero() || b.Remaining >= b.Floor {
		return false
	}
	return b.Window <= 0 || c.now().Before(b.Seen.Add(b.Window))
}

// parseRateLimit parses a ratelimit-limit or ratelimit-remaining value:
// "100;w=21600" is 100 in a window of 21,600 s. Only the first of a list
// counts.
func parseRateLimit(v string) (n int64, window time.Duration, ok bool) {
	v, _, _ = strings.Cut(v, ",")
	num, params, _ := strings.Cut(v, ";")
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 {
		return 0, 0, false
	}
	for p := range strings.SplitSeq(params, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if k == "w" {
			if secs, err := strconv.ParseInt(val, 10, 64); err == nil && secs > 0 && secs < 1<<31 {
				window = time.Duration(secs) * time.Second
			}
		}
	}
	return n, window, true
}
