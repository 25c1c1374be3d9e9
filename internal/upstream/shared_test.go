package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sharedMap is what a cluster shares, held in memory: two clients on one
// of them stand for two replicas.
type sharedMap struct {
	mu sync.Mutex
	m  map[string]State
}

func (s *sharedMap) Publish(name string, st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = st
}

func (s *sharedMap) State(name string) (State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[name]
	return st, ok
}

// What one replica learns of the upstream's budget and 429s, the others
// act on: a block refuses requests on every replica without contacting the
// upstream, and a budget under its floor saves on every replica.
func TestSharedBudgetAndBlock(t *testing.T) {
	var requests atomic.Int64
	var limited atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Ratelimit-Limit", "100;w=21600")
		if limited.Load() {
			w.Header().Set("Ratelimit-Remaining", "0;w=21600")
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Ratelimit-Remaining", "5;w=21600") // under the 10% floor
		io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	shared := &sharedMap{m: map[string]State{}}
	a, clock, _ := newTestClient(t, srv.URL, nil, nil)
	b, _, _ := newTestClient(t, srv.URL, nil, nil)
	b.now = clock.Now // one clock for both replicas
	b.health.now = clock.Now
	a.Share(shared)
	b.Share(shared)
	get := func(c *Client) error {
		resp, err := c.Do(context.Background(), http.MethodGet, "library/alpine", "manifests/latest", nil, nil)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	if b.Saving() {
		t.Fatal("b saves before any answer")
	}
	if err := get(a); err != nil {
		t.Fatal(err)
	}
	if bb := b.Budget(); !bb.Saving || bb.Remaining != 5 || bb.Limit != 100 || bb.Floor != 10 {
		t.Fatalf("b's budget after a's answer = %+v, want a's, saving", bb)
	}

	limited.Store(true)
	if e := asError(t, get(a)); e.Status != http.StatusTooManyRequests {
		t.Fatalf("a: %d, want 429", e.Status)
	}
	before := requests.Load()
	until := clock.Now().Add(30 * time.Second)
	if got := b.Health().BlockedUntil(); !got.Equal(until) || !b.Failing() {
		t.Fatalf("b blocked until %v (failing %v), want %v", got, b.Failing(), until)
	}
	if e := asError(t, get(b)); e.Status != http.StatusTooManyRequests || !e.RetryAfter.Equal(until) {
		t.Fatalf("b: %d until %v, want 429 until %v", e.Status, e.RetryAfter, until)
	}
	if n := requests.Load() - before; n != 0 {
		t.Fatalf("b sent %d requests while a's block held", n)
	}

	limited.Store(false)
	clock.Advance(31 * time.Second)
	if err := get(b); err != nil {
		t.Fatalf("b after the block: %v", err)
	}
}
