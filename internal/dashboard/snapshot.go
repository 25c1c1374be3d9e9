package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/entrepot/entrepot/internal/derive"
)

// Snapshot is everything the page shows, at one time.
type Snapshot struct {
	Time      time.Time  `json:"time"`
	Started   time.Time  `json:"started"`
	Version   string     `json:"version"`
	Totals    Totals     `json:"totals"`
	Store     Store      `json:"store"`
	Upstreams []Upstream `json:"upstreams"`
	// History holds one Sample per Every, oldest first, then the current
	// one.
	History []Sample  `json:"history"`
	Top     []Repo    `json:"top"`
	Fills   []Fill    `json:"fills"`
	Errors  []Failure `json:"errors"`
	// Derived are the derived images with the base each was built from;
	// absent when none is configured.
	Derived []derive.Status `json:"derived,omitempty"`
}

// Totals are the registry API's counters summed over the upstreams:
// entrepot_requests_total by result, entrepot_served_bytes_total and
// entrepot_upstream_bytes_total.
type Totals struct {
	Requests      map[string]float64 `json:"requests"`
	ServedBytes   float64            `json:"served_bytes"`
	UpstreamBytes float64            `json:"upstream_bytes"`
}

// Store is the store's size against its bound (MaxBytes 0: none).
type Store struct {
	Bytes    int64 `json:"bytes"`
	Objects  int64 `json:"objects"`
	MaxBytes int64 `json:"max_bytes"`
}

// Upstream is one upstream's state and counters.
type Upstream struct {
	Name string `json:"name"`
	Host string `json:"host"`
	// State is ok, failing (it failed lately: cached answers are served
	// without asking it), blocked (after a 429, until BlockedUntil) or
	// saving (its rate-limit budget is under its floor).
	State        string     `json:"state"`
	BlockedUntil *time.Time `json:"blocked_until,omitempty"`
	Budget       *Budget    `json:"budget,omitempty"`
	// Requests are the registry API's answers for this upstream, by
	// result; UpstreamRequests the requests sent to it, UpstreamErrors
	// those of them that got no answer, a 429 or a 5xx.
	Requests         map[string]float64 `json:"requests"`
	ServedBytes      float64            `json:"served_bytes"`
	UpstreamBytes    float64            `json:"upstream_bytes"`
	UpstreamRequests float64            `json:"upstream_requests"`
	UpstreamErrors   float64            `json:"upstream_errors"`
}

// Budget is an upstream's rate-limit budget, from its last answer's
// headers.
type Budget struct {
	Limit         int64     `json:"limit"`
	Remaining     int64     `json:"remaining"`
	WindowSeconds float64   `json:"window_seconds"`
	Floor         int64     `json:"floor"`
	Saving        bool      `json:"saving"`
	Seen          time.Time `json:"seen"`
}

// Sample is the totals at one time, for the charts: requests served from
// the cache (Hits: hit, revalidated, joined, stale), fetched (Misses) and
// failed (Errors: error, denied), and bytes.
type Sample struct {
	Time          int64   `json:"t"` // Unix seconds
	Hits          float64 `json:"hits"`
	Misses        float64 `json:"misses"`
	Errors        float64 `json:"errors"`
	ServedBytes   float64 `json:"served_bytes"`
	UpstreamBytes float64 `json:"upstream_bytes"`
	StoreBytes    int64   `json:"store_bytes"`
}

// Fill is a blob download under way.
type Fill struct {
	Upstream string `json:"upstream"`
	Repo     string `json:"repo"`
	Digest   string `json:"digest"`
	// Size is -1 until the upstream has said.
	Size    int64 `json:"size"`
	Written int64 `json:"written"`
}

// usageTimeout bounds the store's count (the filesystem's first one
// walks its blobs).
const usageTimeout = 5 * time.Second

// counts are the counters as gathered, by upstream.
type counts struct {
	requests          map[string]map[string]float64 // upstream, result
	served, fetched   map[string]float64
	upRequests        map[string]float64
	upErrors          map[string]float64
	totalByResult     map[string]float64
	served1, fetched1 float64
}

func (d *Dashboard) gather() (counts, error) {
	c := counts{
		requests: map[string]map[string]float64{}, served: map[string]float64{}, fetched: map[string]float64{},
		upRequests: map[string]float64{}, upErrors: map[string]float64{}, totalByResult: map[string]float64{},
	}
	if d.counters == nil {
		return c, nil
	}
	families, err := d.counters.Gather()
	if err != nil {
		return c, fmt.Errorf("gathering the counters: %w", err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue()
			l := labels(m)
			switch f.GetName() {
			case "entrepot_requests_total":
				byResult := c.requests[l["upstream"]]
				if byResult == nil {
					byResult = map[string]float64{}
					c.requests[l["upstream"]] = byResult
				}
				byResult[l["result"]] += v
				c.totalByResult[l["result"]] += v
			case "entrepot_served_bytes_total":
				c.served[l["upstream"]] += v
				c.served1 += v
			case "entrepot_upstream_bytes_total":
				c.fetched[l["upstream"]] += v
				c.fetched1 += v
			case "entrepot_upstream_requests_total":
				c.upRequests[l["upstream"]] += v
				if code, _ := strconv.Atoi(l["code"]); code == 0 || code == 429 || code >= 500 {
					c.upErrors[l["upstream"]] += v
				}
			}
		}
	}
	return c, nil
}

func labels(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// hitResults are the results served from the cache.
var hitResults = []string{"hit", "revalidated", "joined", "stale"}

func (c counts) sample(t time.Time, store int64) Sample {
	s := Sample{Time: t.Unix(), Misses: c.totalByResult["miss"], Errors: c.totalByResult["error"] + c.totalByResult["denied"],
		ServedBytes: c.served1, UpstreamBytes: c.fetched1, StoreBytes: store}
	for _, r := range hitResults {
		s.Hits += c.totalByResult[r]
	}
	return s
}

func (d *Dashboard) store(ctx context.Context) Store {
	ctx, cancel := context.WithTimeout(ctx, usageTimeout)
	defer cancel()
	s := Store{MaxBytes: d.cache.MaxSize()}
	if u, err := d.cache.Usage(ctx); err == nil {
		s.Bytes, s.Objects = u.Bytes, u.Count
	}
	return s
}

// current is the sample of now.
func (d *Dashboard) current(ctx context.Context) Sample {
	c, _ := d.gather()
	return c.sample(d.now(), d.store(ctx).Bytes)
}

// snapshot computes a snapshot; d.mu is held.
func (d *Dashboard) snapshot(ctx context.Context, now time.Time) (*Snapshot, error) {
	c, err := d.gather()
	if err != nil {
		return nil, err
	}
	st := d.store(ctx)
	s := &Snapshot{Fills: []Fill{},
		Time: now, Started: d.started, Version: d.version,
		Totals: Totals{Requests: c.totalByResult, ServedBytes: c.served1, UpstreamBytes: c.fetched1},
		Store:  st,
	}
	for _, u := range d.ups {
		name := u.Name()
		up := Upstream{Name: name, Host: u.Host(), State: "ok",
			Requests: c.requests[name], ServedBytes: c.served[name], UpstreamBytes: c.fetched[name],
			UpstreamRequests: c.upRequests[name], UpstreamErrors: c.upErrors[name]}
		if up.Requests == nil {
			up.Requests = map[string]float64{}
		}
		b := u.Budget()
		if !b.Seen.IsZero() {
			up.Budget = &Budget{Limit: b.Limit, Remaining: b.Remaining, WindowSeconds: b.Window.Seconds(), Floor: b.Floor, Saving: b.Saving, Seen: b.Seen}
		}
		switch until := u.Health().BlockedUntil(); {
		case !until.IsZero():
			up.State, up.BlockedUntil = "blocked", &until
		case u.Failing():
			up.State = "failing"
		case b.Saving:
			up.State = "saving"
		}
		s.Upstreams = append(s.Upstreams, up)
	}
	s.History = append(d.history.all(), c.sample(now, st.Bytes))
	s.Top = d.recent.top(topRepos)
	s.Errors = d.recent.errors()
	for _, f := range d.cache.Fills() {
		s.Fills = append(s.Fills, Fill{Upstream: f.Source, Repo: f.Repo, Digest: f.Digest.String(), Size: f.Size, Written: f.Written})
	}
	slices.SortFunc(s.Fills, func(a, b Fill) int { return cmp.Compare(a.Digest, b.Digest) })
	if d.derived != nil {
		s.Derived = d.derived()
	}
	return s, nil
}

// topRepos is how many repositories the page lists.
const topRepos = 10
