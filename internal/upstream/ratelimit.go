package upstream

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
)

const (
	// defaultRetryAfter applies to a 429 without a usable Retry-After.
	defaultRetryAfter = 60 * time.Second
	// minRetryAfter and maxRetryAfter bound a Retry-After: a zero or past
	// value would let a refused pull retry in a hot loop, and a huge one
	// would switch the upstream off until restart.
	minRetryAfter = time.Second
	maxRetryAfter = time.Hour
)

// blockedError is Do's answer while the upstream is rate-limited.
func (c *Client) blockedError(until time.Time) *Error {
	return &Error{
		Upstream:   c.name,
		Status:     http.StatusTooManyRequests,
		Code:       oci.CodeTooManyRequests,
		Message:    "rate limited until " + until.UTC().Format(time.RFC3339),
		RetryAfter: until,
	}
}

// block records a 429 whose headers are h and returns when the upstream
// may be contacted again. It logs once per blocked period, not once per
// refused request.
func (c *Client) block(h http.Header) time.Time {
	until, wasBlocked := c.health.block(retryAfter(h.Get("Retry-After"), c.now()))
	c.publish()
	if !wasBlocked {
		attrs := []any{"upstream", c.name, "until", until}
		for _, k := range []string{"Ratelimit-Limit", "Ratelimit-Remaining", "Docker-Ratelimit-Source"} {
			if v := h.Get(k); v != "" {
				attrs = append(attrs, slog.String(strings.ToLower(k), clean(v)))
			}
		}
		c.log.Warn("upstream rate limit reached; not contacting it until the limit resets", attrs...)
	}
	return until
}

// retryAfter parses a Retry-After value (delay seconds or an HTTP-date)
// into a wait from now, bounded by minRetryAfter and maxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	d := defaultRetryAfter
	if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		d = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, minRetryAfter), maxRetryAfter)
}
