package upstream

import (
	"sync"
	"time"
)

// quietPeriod is how long a failing upstream is left alone while cached
// answers cover for it: during an outage each pull of cached content is
// answered at once instead of waiting for the upstream's timeout.
const quietPeriod = 10 * time.Second

// Health is what is known of an upstream's recent answers, on one clock:
// until when it is left alone after a failure (the quiet period), and
// until when it must not be contacted at all after a 429 (the block). The
// client writes it; the cache asks it whether to serve a cached answer
// without asking the upstream; metrics read it.
type Health struct {
	now func() time.Time

	mu sync.Mutex // protects the fields below
	// failedUntil ends the quiet period after a failure (a transport
	// error, a 5xx, a stalled body); a success ends it at once.
	failedUntil time.Time
	// blockedUntil is when a 429's Retry-After expires; until then the
	// client refuses without contacting the upstream.
	blockedUntil time.Time
	// shared returns the block other replicas announced (Client.Share);
	// nil: none. Called without mu held.
	shared func() time.Time
}

func newHealth(now func() time.Time) *Health { return &Health{now: now} }

// Failing tells whether the upstream failed lately or is blocked, so that a
// cached answer is served without asking it.
func (h *Health) Failing() bool {
	blocked := h.sharedBlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	return now.Before(h.failedUntil) || now.Before(h.blockedUntil) || now.Before(blocked)
}

// sharedBlock is the block other replicas announced, or the zero time.
func (h *Health) sharedBlock() time.Time {
	if h.shared == nil {
		return time.Time{}
	}
	return h.shared()
}

// BlockedUntil returns when the upstream may be contacted again after a
// 429, or the zero time when it is not blocked.
func (h *Health) BlockedUntil() time.Time {
	blocked := h.sharedBlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	blocked = later(blocked, h.blockedUntil)
	if h.now().Before(blocked) {
		return blocked
	}
	return time.Time{}
}

// ownBlock is the block this replica's answers set, for sharing.
func (h *Health) ownBlock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.blockedUntil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// failed starts a quiet period.
func (h *Health) failed() {
	h.mu.Lock()
	h.failedUntil = h.now().Add(quietPeriod)
	h.mu.Unlock()
}

// succeeded ends the quiet period.
func (h *Health) succeeded() {
	h.mu.Lock()
	h.failedUntil = time.Time{}
	h.mu.Unlock()
}

// block records a 429 that lasts for wait and returns when it ends, and
// whether the upstream was blocked already.
func (h *Health) block(wait time.Duration) (until time.Time, already bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	already = now.Before(h.blockedUntil)
	until = now.Add(wait)
	if until.After(h.blockedUntil) {
		h.blockedUntil = until
	}
	return h.blockedUntil, already
}
