// Package metrics is Entrepot's Prometheus instrumentation: a middleware
// counting the registry API's answers, an observer of the upstream
// clients' traffic, and a collector that reads the gauges (rate-limit
// budgets, 429 blocks, fills under way, store size) when scraped, so that
// the hot path only adds to counters.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/upstream"
)

// Metrics holds the registry of every metric Entrepot exports.
type Metrics struct {
	reg *prometheus.Registry
	// counters holds the counters alone, for the dashboard, which reads
	// the gauges at their source.
	counters *prometheus.Registry

	requests         *prometheus.CounterVec
	served           *prometheus.CounterVec
	upstreamBytes    *prometheus.CounterVec
	upstreamRequests *prometheus.CounterVec
	duration         *prometheus.HistogramVec
}

// New returns the metrics of a cache c and its upstreams ups, with the Go
// runtime and process collectors.
func New(c *cache.Cache, ups []*upstream.Client) *Metrics {
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		counters: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entrepot_requests_total",
			Help: "Registry API requests answered, by upstream, kind (manifest, blob, tags, referrers) and result (hit, miss, joined, revalidated, stale, error, denied).",
		}, []string{"upstream", "kind", "result"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entrepot_served_bytes_total",
			Help: "Body bytes sent to clients, by upstream.",
		}, []string{"upstream"}),
		upstreamBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entrepot_upstream_bytes_total",
			Help: "Body bytes fetched from upstreams, by upstream.",
		}, []string{"upstream"}),
		upstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entrepot_upstream_requests_total",
			Help: "Requests sent to upstreams, by upstream, method, kind (manifest, blob, tags, referrers, token, ping) and status code (0: no answer).",
		}, []string{"upstream", "method", "kind", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "entrepot_request_duration_seconds",
			Help:    "Time to answer registry API requests, body included, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10), // 0.5 ms to 131 s
		}, []string{"kind"}),
	}
	// Every upstream's series exist from the start, at zero, so that a
	// rate over them is defined before the first pull.
	for _, u := range ups {
		m.served.WithLabelValues(u.Name())
		m.upstreamBytes.WithLabelValues(u.Name())
		u.Observe(observer{m})
	}
	m.counters.MustRegister(m.requests, m.served, m.upstreamBytes, m.upstreamRequests)
	m.reg.MustRegister(m.requests, m.served, m.upstreamBytes, m.upstreamRequests, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&state{cache: c, ups: ups})
	return m
}

// Cluster exposes the state of the replica's cluster: up tells whether it
// reaches Redis, replicas how many replicas it sees, leading whether it
// does the lifecycle work.
func (m *Metrics) Cluster(status func() (up bool, replicas int, leading bool)) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entrepot_cluster_up",
			Help: "1 while this replica reaches the cluster's Redis, 0 while it acts alone.",
		}, func() float64 { up, _, _ := status(); return b(up) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entrepot_cluster_replicas",
			Help: "Replicas of the cluster this replica saw at its last heartbeat.",
		}, func() float64 { _, n, _ := status(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entrepot_cluster_leader",
			Help: "1 while this replica leads the cluster (eviction, expiry, warm-ups).",
		}, func() float64 { _, _, l := status(); return b(l) }),
	)
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Counters gathers the counters alone (requests, bytes, upstream
// requests), as /metrics shows them, without the cost of the gauges and
// the runtime's collectors.
func (m *Metrics) Counters() prometheus.Gatherer { return m.counters }

// Middleware counts each registry API answer by the Info the handler
// filled in: its result, the bytes sent and how long it took. Requests
// of no kind (the /v2/ ping, unknown paths) count only their bytes.
func (m *Metrics) Middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := httpx.Recorder(w)
		defer func() {
			info := httpx.InfoOf(r.Context())
			if info.Kind == "" {
				return
			}
			m.requests.WithLabelValues(info.Upstream, info.Kind, info.ResultOf(rw.Status())).Inc()
			if n := rw.Written(); n > 0 {
				m.served.WithLabelValues(info.Upstream).Add(float64(n))
			}
			m.duration.WithLabelValues(info.Kind).Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(rw, r)
	})
}

// observer counts an upstream client's traffic.
type observer struct{ m *Metrics }

func (o observer) Request(upstream, method, kind string, code int) {
	o.m.upstreamRequests.WithLabelValues(upstream, method, kind, strconv.Itoa(code)).Inc()
}

func (o observer) Received(upstream string, n int) {
	o.m.upstreamBytes.WithLabelValues(upstream).Add(float64(n))
}

// state reads the gauges when scraped.
type state struct {
	cache *cache.Cache
	ups   []*upstream.Client
}

var (
	limitDesc     = prometheus.NewDesc("entrepot_upstream_ratelimit_limit", "The upstream's rate limit, from its last ratelimit-limit header.", []string{"upstream"}, nil)
	remainingDesc = prometheus.NewDesc("entrepot_upstream_ratelimit_remaining", "Requests left in the upstream's rate-limit window, from its last ratelimit-remaining header.", []string{"upstream"}, nil)
	windowDesc    = prometheus.NewDesc("entrepot_upstream_ratelimit_window_seconds", "The upstream's rate-limit window.", []string{"upstream"}, nil)
	savingDesc    = prometheus.NewDesc("entrepot_upstream_ratelimit_saving", "1 while the upstream's remaining budget is under its floor: cached tags are served without revalidation.", []string{"upstream"}, nil)
	blockedDesc   = prometheus.NewDesc("entrepot_upstream_blocked_until_seconds", "While a 429 block lasts, when it ends (Unix time); else 0.", []string{"upstream"}, nil)
	failingDesc   = prometheus.NewDesc("entrepot_upstream_failing", "1 while the upstream failed lately or is blocked, so that cached answers are served without asking it.", []string{"upstream"}, nil)
	fillsDesc     = prometheus.NewDesc("entrepot_fills_in_flight", "Blob downloads from the upstream under way.", []string{"upstream"}, nil)
	bytesDesc     = prometheus.NewDesc("entrepot_store_bytes", "Size of the blobs the store holds.", nil, nil)
	objectsDesc   = prometheus.NewDesc("entrepot_store_objects", "Number of blobs the store holds.", nil, nil)
	maxDesc       = prometheus.NewDesc("entrepot_store_max_bytes", "The store's bound (storage.max_size); 0: none.", nil, nil)
)

func (s *state) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{limitDesc, remainingDesc, windowDesc, savingDesc, blockedDesc, failingDesc, fillsDesc, bytesDesc, objectsDesc, maxDesc} {
		ch <- d
	}
}

// usageTimeout bounds the store's count at a scrape (the filesystem's
// first count walks its blobs).
const usageTimeout = 5 * time.Second

func (s *state) Collect(ch chan<- prometheus.Metric) {
	fills := map[string]int{}
	for _, f := range s.cache.Fills() {
		fills[f.Source]++
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, u := range s.ups {
		name := u.Name()
		if b := u.Budget(); !b.Seen.IsZero() {
			gauge(limitDesc, float64(b.Limit), name)
			gauge(remainingDesc, float64(b.Remaining), name)
			gauge(windowDesc, b.Window.Seconds(), name)
			gauge(savingDesc, bool01(b.Saving), name)
		}
		var until float64
		if t := u.Health().BlockedUntil(); !t.IsZero() {
			until = float64(t.UnixMilli()) / 1000
		}
		gauge(blockedDesc, until, name)
		gauge(failingDesc, bool01(u.Failing()), name)
		gauge(fillsDesc, float64(fills[name]), name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), usageTimeout)
	defer cancel()
	if usage, err := s.cache.Usage(ctx); err == nil {
		gauge(bytesDesc, float64(usage.Bytes))
		gauge(objectsDesc, float64(usage.Count))
	}
	gauge(maxDesc, float64(s.cache.MaxSize()))
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
