package cache

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// fillCaps bound the blob fills under way per source (upstreams[].max_fills),
// so that one burst of cold pulls cannot take a shared upstream's whole
// bandwidth or rate-limit budget. A source with no cap is not bounded.
type fillCaps struct {
	mu   sync.Mutex // protects sems
	max  map[string]int
	sems map[string]chan struct{}
}

// capWait is how long a client's new fill waits for a free place before
// it is refused with ErrTooManyFills.
const capWait = 5 * time.Second

// TooManyFillsError refuses a fill while its source has max fills under
// way: the client may retry after RetryAfter.
type TooManyFillsError struct {
	Source     string
	Max        int
	RetryAfter time.Duration
}

func (e *TooManyFillsError) Error() string {
	return fmt.Sprintf("upstream %q has %d downloads under way, its limit (upstreams[].max_fills); retry shortly", e.Source, e.Max)
}

func newFillCaps(max map[string]int) *fillCaps {
	return &fillCaps{max: max, sems: map[string]chan struct{}{}}
}

// sem is source's semaphore, nil when it has no cap.
func (fc *fillCaps) sem(source string) chan struct{} {
	n := fc.max[source]
	if n <= 0 {
		return nil
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	s := fc.sems[source]
	if s == nil {
		s = make(chan struct{}, n)
		fc.sems[source] = s
	}
	return s
}

// acquire takes a place for a fill of source, waiting up to wait (for
// ever if negative) while ctx lasts.
func (fc *fillCaps) acquire(ctx context.Context, source string, wait time.Duration) error {
	s := fc.sem(source)
	if s == nil {
		return nil
	}
	select {
	case s <- struct{}{}:
		return nil
	default:
	}
	if wait < 0 {
		select {
		case s <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return nil
	case <-t.C:
		return &TooManyFillsError{Source: source, Max: cap(s), RetryAfter: time.Second}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives a place back.
func (fc *fillCaps) release(source string) {
	if s := fc.sem(source); s != nil {
		<-s
	}
}
