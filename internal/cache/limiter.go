package cache

import (
	"context"
	"sync"
)

// limiter holds, per source, a fixed number of slots. Every fill takes a
// slot while one is free (a client's fill never waits for one); a prefetch
// waits for one. So prefetches only use the room that clients' fills
// leave.
type limiter struct {
	size int // slots per source; 0: none, every take fails

	mu   sync.Mutex // protects sems
	sems map[string]chan struct{}
}

func newLimiter(size int) *limiter {
	return &limiter{size: size, sems: map[string]chan struct{}{}}
}

func (l *limiter) sem(source string) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sems[source]
	if s == nil {
		s = make(chan struct{}, l.size)
		l.sems[source] = s
	}
	return s
}

// tryTake takes a slot of source if one is free.
func (l *limiter) tryTake(source string) bool {
	if l.size == 0 {
		return false
	}
	select {
	case l.sem(source) <- struct{}{}:
		return true
	default:
		return false
	}
}

// take waits for a slot of source, until ctx ends.
func (l *limiter) take(ctx context.Context, source string) bool {
	if l.size == 0 {
		return false
	}
	select {
	case l.sem(source) <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// give returns a slot taken.
func (l *limiter) give(source string) { <-l.sem(source) }
