package cache

import (
	"testing"
	"time"
)

// After one eviction that falls short the next check retries; after two in
// a row, the next waits shortBackoff, unless the content grows by a
// hundredth of the bound.
func TestShortfallBackoff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const max = 1000
	var s shortfall
	if !s.retry(now, 900, max) {
		t.Fatal("no shortfall yet, and no retry")
	}
	s = s.again(now, 900)
	if !s.retry(now.Add(time.Second), 900, max) {
		t.Fatal("after one short eviction, the next check does not retry")
	}
	s = s.again(now, 900)
	if s.retry(now.Add(time.Second), 905, max) {
		t.Fatal("after two short evictions, a check a second later retries")
	}
	if !s.retry(now.Add(time.Second), 911, max) {
		t.Fatal("content grown by more than a hundredth of the bound does not retry")
	}
	if !s.retry(now.Add(shortBackoff+time.Second), 900, max) {
		t.Fatal("no retry after the backoff")
	}
}
