package cache

import (
	"context"
	"sync"
)

// limiter holds, per source, a fixed number of slots: the source's
// connection budget (upstreams[].max_connections). Every fill takes a
// slot while one is free (a client's fill never waits for one); a prefetch
// waits for one; a fill's extra parts (Parallel) start only while one is
// free. So prefetches and parts only use the room that clients' fills
// leave.
type limiter struct {
	sizes map[string]int // slots per source, by name
	size  int            // slots of a source not in sizes

	mu   sync.Mutex // protects sems
	sems map[string]chan struct{}
}

// defaultConns is the budget of a source the options do not size.
const defaultConns = 16

func newLimiter(sizes map[string]int) *limiter {
	return &limiter{sizes: sizes, size: defaultConns, sems: map[string]chan struct{}{}}
}

func (l *limiter) sem(source string) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sems[source]
	if s == nil {
		n, ok := l.sizes[source]
		if !ok {
			n = l.size
		}
		s = make(chan struct{}, n)
		l.sems[source] = s
	}
	return s
}

// tryTake takes a slot of source if one is free.
func (l *limiter) tryTake(source string) bool {
	select {
	case l.sem(source) <- struct{}{}:
		return true
	default:
		return false
	}
}

// take waits for a slot of source, until ctx ends.
func (l *limiter) take(ctx context.Context, source string) bool {
	select {
	case l.sem(source) <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// give returns a slot taken.
func (l *limiter) give(source string) { <-l.sem(source) }
