package cache

import (
	"context"
	"sync/atomic"
)

// Result is what the cache did to answer one request, as logs, metrics
// and the Cache-Status header name it.
type Result uint32

// The results, in rising precedence: a request that revalidated a tag and
// then fetched its manifest was a miss.
const (
	// None: nothing was recorded (an error before the cache decided).
	None Result = iota
	// Hit: served from the store, fresh, without asking the source.
	Hit
	// Revalidated: checked with the source (a tag's HEAD, a document
	// fetched again), and served.
	Revalidated
	// Joined: served from a fetch another request started.
	Joined
	// Miss: fetched from the source, and stored.
	Miss
	// Stale: a cached answer served in place of the source's, which
	// failed or was not asked (failing lately, rate-limit budget low).
	Stale
)

var resultNames = [...]string{"", "hit", "revalidated", "joined", "miss", "stale"}

func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "unknown"
}

// Outcome collects the results of one request's calls to the cache; the
// highest wins.
type Outcome struct{ r atomic.Uint32 }

// Result is the request's result so far.
func (o *Outcome) Result() Result { return Result(o.r.Load()) }

func (o *Outcome) note(r Result) {
	for {
		old := o.r.Load()
		if Result(old) >= r || o.r.CompareAndSwap(old, uint32(r)) {
			return
		}
	}
}

type outcomeKey struct{}

// WithOutcome returns a context whose calls to the cache record what it
// did in the Outcome returned.
func WithOutcome(ctx context.Context) (context.Context, *Outcome) {
	o := new(Outcome)
	return context.WithValue(ctx, outcomeKey{}, o), o
}

// note records r for the request of ctx, if it asked for an outcome.
func note(ctx context.Context, r Result) {
	if o, ok := ctx.Value(outcomeKey{}).(*Outcome); ok {
		o.note(r)
	}
}
