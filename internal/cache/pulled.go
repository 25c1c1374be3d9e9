package cache

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// pulled keeps when each blob and manifest was last served, for eviction
// and idle expiry, and which blobs clients are reading now, which eviction
// leaves alone. A pull costs a map write in memory; the times reach the
// store in batches (flush), one record per batch under pulledPrefix, and
// load merges them back after a restart, in the background.
type pulled struct {
	mu      sync.Mutex              // protects the fields below
	fresh   map[digest.Digest]int64 // served since the last flush, unix milliseconds
	known   map[digest.Digest]int64 // every time flushed or loaded
	reading map[digest.Digest]int   // blobs open for clients, and how many times
	batches []string                // the records known holds, oldest first
	loaded  bool                    // load has merged the stored batches
}

// pulledPrefix is where the batches live: pulled/<unix nanoseconds>.
const pulledPrefix = "pulled"

// compactAfter is how many batches accumulate before flush writes them
// again as one.
const compactAfter = 64

func newPulled() *pulled {
	return &pulled{fresh: map[digest.Digest]int64{}, known: map[digest.Digest]int64{}, reading: map[digest.Digest]int{}}
}

// touch records that d was served at now.
func (p *pulled) touch(d digest.Digest, now time.Time) {
	p.mu.Lock()
	p.fresh[d] = now.UnixMilli()
	p.mu.Unlock()
}

// open records that a client reads blob d from now until the returned
// function is called.
func (p *pulled) open(d digest.Digest, now time.Time) (release func()) {
	p.mu.Lock()
	p.fresh[d] = now.UnixMilli()
	p.reading[d]++
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			if p.reading[d]--; p.reading[d] <= 0 {
				delete(p.reading, d)
			}
			p.mu.Unlock()
		})
	}
}

// last returns when d was last served, and false if that is not known.
func (p *pulled) last(d digest.Digest) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.fresh[d]
	if k, kok := p.known[d]; kok && (!ok || k > t) {
		t, ok = k, true
	}
	return time.UnixMilli(t), ok
}

// inUse tells whether a client reads blob d now.
func (p *pulled) inUse(d digest.Digest) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reading[d] > 0
}

// seen records now as d's time if none is known, so that content whose
// pulls were never recorded (stored before the times were kept, or lost in
// a crash) ages from its first sighting rather than counting as oldest.
func (p *pulled) seen(d digest.Digest, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.fresh[d]; ok {
		return
	}
	if _, ok := p.known[d]; !ok {
		p.fresh[d] = now.UnixMilli()
	}
}

// retain drops the stored times of the digests for which keep is false
// (gone from the store, maybe before a restart), so that the batches do not
// carry them forever. Times not yet flushed stay: they may be of content
// stored since keep's catalog was read.
func (p *pulled) retain(keep func(digest.Digest) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d := range p.known {
		if !keep(d) {
			delete(p.known, d)
		}
	}
}

// forget drops d's times, once d is gone from the store.
func (p *pulled) forget(d digest.Digest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.fresh, d)
	delete(p.known, d)
}

// flush writes the times served since the last flush as one batch, and,
// once enough batches have accumulated, writes everything known as one
// batch and removes the others. A crash between the two leaves the same
// times twice, which load merges.
func (p *pulled) flush(ctx context.Context, records store.Records, now time.Time) error {
	p.mu.Lock()
	batch := p.fresh
	p.fresh = map[digest.Digest]int64{}
	for d, t := range batch {
		if t > p.known[d] {
			p.known[d] = t
		}
	}
	compact := p.loaded && len(p.batches) >= compactAfter
	var old []string
	if compact {
		batch = make(map[digest.Digest]int64, len(p.known))
		for d, t := range p.known {
			batch[d] = t
		}
		old, p.batches = p.batches, nil
	}
	p.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	b, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	key := pulledPrefix + "/" + strconv.FormatInt(now.UnixNano(), 10)
	if err := records.Put(ctx, key, b); err != nil {
		p.restore(batch, old)
		return err
	}
	p.mu.Lock()
	p.batches = append(p.batches, key)
	p.mu.Unlock()
	for _, k := range old {
		if err := records.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// restore puts back what a failed flush took, to be written by the next.
func (p *pulled) restore(batch map[digest.Digest]int64, old []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d, t := range batch {
		if t > p.fresh[d] {
			p.fresh[d] = t
		}
	}
	p.batches = append(old, p.batches...)
}

// load merges the stored batches it has not merged yet into what is known:
// at start, and in a cluster before each eviction, to know the other
// replicas' pulls. Records that are no batch (a torn write cannot be one: records are put atomically) are
// skipped.
func (p *pulled) load(ctx context.Context, records store.Records) error {
	p.mu.Lock()
	have := make(map[string]bool, len(p.batches))
	for _, k := range p.batches {
		have[k] = true
	}
	p.mu.Unlock()
	var keys []string
	err := records.Walk(ctx, pulledPrefix, func(key string) error {
		if !have[key] { // merged already: load runs again in a cluster
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, key := range keys {
		if _, err := strconv.ParseInt(strings.TrimPrefix(key, pulledPrefix+"/"), 10, 64); err != nil {
			continue
		}
		b, err := records.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var batch map[digest.Digest]int64
		if json.Unmarshal(b, &batch) != nil {
			continue
		}
		p.mu.Lock()
		for d, t := range batch {
			if t > p.known[d] {
				p.known[d] = t
			}
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.batches = append(keys, p.batches...)
	p.loaded = true
	p.mu.Unlock()
	return nil
}
