package cache

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// memo keeps the records a pull reads on every request (manifests by
// digest, tag records) in memory, in front of the store, so that a warm
// manifest request costs no file access. It is a copy of what the store
// holds, never the only one: every value is written to the store first, and
// a replica that does not have it reads the store. Values are immutable
// once put; a get returns a pointer the caller must not modify.
type memo struct {
	mu    sync.Mutex
	lru   *simplelru.LRU[string, memoEntry]
	bytes int64 // the sum of the entries' sizes
	max   int64
	// epoch counts forgets. A value read from the store before a forget
	// may be what the forget removed: put keeps a value only if no forget
	// ran since its caller began to read it (see epochNow).
	epoch uint64
}

type memoEntry struct {
	v    any
	size int64
}

// memoEntryOverhead approximates the memory of an entry beyond its body.
const memoEntryOverhead = 256

// newMemo returns a memo of at most max bytes.
func newMemo(max int64) *memo {
	m := &memo{max: max}
	// The byte budget evicts; the LRU's own bound never does.
	m.lru, _ = simplelru.NewLRU(1<<30, func(_ string, e memoEntry) { m.bytes -= e.size })
	return m
}

func (m *memo) get(key string) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.lru.Get(key)
	return e.v, ok
}

// epochNow is the epoch to give put for a value read from the store from
// now on.
func (m *memo) epochNow() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.epoch
}

// forget drops keys, once what they held is gone from the store.
func (m *memo) forget(keys ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.epoch++
	for _, k := range keys {
		m.lru.Remove(k)
	}
}

// put keeps v under key, evicting the least recently used entries beyond
// the budget, unless a forget ran since epoch (then v may be stale). size
// is v's approximate memory in bytes.
func (m *memo) put(key string, v any, size int64, epoch uint64) {
	size += memoEntryOverhead
	if size > m.max/16 {
		return // one entry never takes a large part of the budget
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if epoch != m.epoch {
		// v may be stale, and so may what the memo holds: an older
		// value would otherwise outlive a newer one written to the store.
		m.lru.Remove(key)
		return
	}
	if old, ok := m.lru.Peek(key); ok {
		m.bytes -= old.size
	}
	m.lru.Add(key, memoEntry{v, size})
	m.bytes += size
	for m.bytes > m.max {
		m.lru.RemoveOldest()
	}
}
