// Package dashboard is Entrepot's live dashboard, on the admin listener:
// a page, embedded in the binary, that polls one JSON snapshot of the
// cache (GET /api/v1/dashboard) and draws it: each upstream's health,
// rate-limit budget and requests; the hit ratio and the bytes saved over
// time; the store against its bound; the most pulled repositories; fills
// in flight; recent errors.
//
// The figures are those of /metrics: the counters are read from the same
// registry, the gauges from where its collector reads them. A snapshot is
// computed at most once a second, whatever the number of pages open.
package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/derive"
	"github.com/entrepot/entrepot/internal/upstream"
)

// Dashboard serves the page and its snapshots, and keeps what /metrics
// does not: the history of the totals, the repositories' pulls and the
// recent errors.
type Dashboard struct {
	counters prometheus.Gatherer
	cache    *cache.Cache
	ups      []*upstream.Client
	version  string
	derived  func() []derive.Status // nil: none configured
	started  time.Time
	now      func() time.Time

	recent *recent

	mu      sync.Mutex // protects history, and the snapshot cache
	history ring[Sample]
	body    []byte
	at      time.Time
}

// Options are a dashboard's parts besides the cache.
type Options struct {
	// Counters gathers Entrepot's counters (metrics.Metrics.Counters).
	Counters prometheus.Gatherer
	// Version is shown in the page's header.
	Version string
	// Derived lists the derived images; nil: none are configured.
	Derived func() []derive.Status
}

// History is how many samples the dashboard keeps, one per Every: an hour.
const (
	Every   = 10 * time.Second
	History = 360
)

// maxAge is how long a snapshot is served again before it is computed
// afresh: many pages open cost as much as one.
const maxAge = time.Second

// New returns the dashboard of c and its upstreams ups.
func New(c *cache.Cache, ups []*upstream.Client, opts Options) *Dashboard {
	return &Dashboard{
		counters: opts.Counters,
		cache:    c,
		ups:      ups,
		version:  opts.Version,
		derived:  opts.Derived,
		started:  time.Now(),
		now:      time.Now,
		recent:   newRecent(),
		history:  newRing[Sample](History),
	}
}

// Run samples the totals every Every until ctx ends, for the charts.
func (d *Dashboard) Run(ctx context.Context) {
	d.sample(ctx)
	t := time.NewTicker(Every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			d.sample(ctx)
		case <-ctx.Done():
			return
		}
	}
}

func (d *Dashboard) sample(ctx context.Context) {
	s := d.current(ctx)
	d.mu.Lock()
	d.history.add(s)
	d.mu.Unlock()
}

// Mux is where the dashboard attaches: the admin listener (admin.Server).
type Mux interface {
	// Handle adds a handler behind the admin token.
	Handle(pattern string, h http.Handler)
	// HandlePublic adds one that needs no token.
	HandlePublic(pattern string, h http.Handler)
}

// Register adds the dashboard to m: the page and its assets need no token
// (they hold no data), the snapshot is behind the admin token.
func (d *Dashboard) Register(m Mux) {
	assets := assetHandler()
	m.HandlePublic("GET /{$}", assets)
	m.HandlePublic("GET /dashboard/", assets)
	m.Handle("GET /api/v1/dashboard", http.HandlerFunc(d.serveSnapshot))
}

func (d *Dashboard) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	body, err := d.snapshotJSON(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.Write(body)
}

// snapshotJSON returns the snapshot of at most maxAge ago, computing a new
// one when it is older.
func (d *Dashboard) snapshotJSON(ctx context.Context) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if d.body != nil && now.Sub(d.at) < maxAge {
		return d.body, nil
	}
	s, err := d.snapshot(ctx, now)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	d.body, d.at = body, now
	return body, nil
}
