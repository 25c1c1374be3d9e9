package registry_test

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/derive"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/metrics"
	"github.com/entrepot/entrepot/internal/registry"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/upstream"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// origin is a real registry (go-containerregistry's) behind a front that
// counts the requests it gets and can be told to misbehave.
type origin struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[string]int                                    // "GET blobs" -> n; protected by mu
	fault  func(w http.ResponseWriter, r *http.Request) bool // protected by mu; true: handled
}

func newOrigin(t *testing.T) *origin {
	o := &origin{counts: map[string]int{}}
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(true))
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.counts[r.Method+" "+endpoint(r.URL.Path)]++
		fault := o.fault
		o.mu.Unlock()
		if fault != nil && fault(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

// endpoint names the API endpoint of a path: manifests, blobs, tags,
// referrers, uploads or base.
func endpoint(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		switch parts[i] {
		case "manifests", "blobs", "referrers", "tags", "uploads":
			if parts[i] == "blobs" && i+1 < len(parts) && parts[i+1] == "uploads" {
				return "uploads"
			}
			return parts[i]
		}
	}
	return "base"
}

func (o *origin) count(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[key]
}

// total counts the requests that reached the origin, pushes excluded.
func (o *origin) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for k, v := range o.counts {
		if !strings.HasSuffix(k, "uploads") && !strings.HasPrefix(k, "PUT") && !strings.HasPrefix(k, "POST") {
			n += v
		}
	}
	return n
}

func (o *origin) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts = map[string]int{}
}

func (o *origin) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fault = f
}

func (o *origin) host() string { return strings.TrimPrefix(o.URL, "http://") }

// cacheServer is Entrepot under test: the registry handler over a cache over
// a filesystem store, with upstreams "docker.io" (the default) and
// "ghcr.io", both pointing at the same origin URL.
type cacheServer struct {
	*httptest.Server
	cache  *cache.Cache
	dir    *fs.Dir
	cancel context.CancelFunc // ends the cache's fills
	once   sync.Once          // of Close
	owned  bool               // the server opened dir, and closes it
	// metrics count what the server answers, as in cmd/entrepot.
	metrics *metrics.Metrics
}

type options struct {
	ttl     time.Duration
	dataDir string
	// dir, when set, is a store shared with another cache server (which
	// closes it), standing in for a store that replicas share.
	dir     *fs.Dir
	url     string // upstream URL; default the origin's
	timeout time.Duration
	// prefetch is off unless set, so that tests count only what clients ask.
	prefetch int
	// limits bound the store; Evict runs only when the test calls it.
	limits cache.Limits
	// defaultTimeouts keeps the configuration's default timeouts.
	defaultTimeouts bool
	// transport, when set, carries the upstream requests.
	transport http.RoundTripper
	// policies are the upstreams' approved-images policies, by name.
	policies map[string]cache.ImagePolicy
	// maxFills bound the fills per upstream, by name.
	maxFills map[string]int
	// conns are the upstreams' connection budgets, by name (default 16);
	// parallel is how their large blobs are fetched (default: one stream).
	conns    map[string]int
	parallel map[string]cache.Parallel
	// urls are upstream URLs by name, in place of url; push names the
	// upstreams that take pushes.
	urls map[string]string
	push map[string]bool
	// derive are derived images served under derived/, their bases
	// resolved against the two upstreams as the configuration does.
	derive []derive.Spec
}

func newCache(t *testing.T, o *origin, opt options) *cacheServer {
	if opt.dataDir == "" {
		opt.dataDir = t.TempDir()
	}
	if opt.url == "" {
		opt.url = o.URL
	}
	if opt.timeout == 0 {
		// Long enough never to fire by accident: tests hold the origin's
		// answer (before the headers or mid-body) while clients gather,
		// which takes seconds on a loaded 2-core machine under -race.
		// Tests of the timeouts set a short one themselves.
		opt.timeout = time.Minute
	}
	dir, owned := opt.dir, opt.dir == nil
	if owned {
		var err error
		if dir, err = fs.New(opt.dataDir); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := nopLog()
	c := cache.New(ctx, dir.Store(), cache.Options{Prefetch: opt.prefetch, Limits: opt.limits, Policies: opt.policies, MaxFills: opt.maxFills, Conns: opt.conns, Parallel: opt.parallel}, log)
	u, _ := url.Parse(opt.url)
	var ups []*upstream.Client
	var cfgs []config.Upstream
	for _, name := range []string{"docker.io", "ghcr.io"} {
		cfg := config.NewUpstream(name, u)
		if v, ok := opt.urls[name]; ok {
			cfg.URL, _ = url.Parse(v)
		}
		cfg.Push = opt.push[name]
		cfg.TTL = opt.ttl
		if !opt.defaultTimeouts {
			cfg.ConnectTimeout, cfg.ResponseHeaderTimeout, cfg.IdleTimeout = opt.timeout, opt.timeout, opt.timeout
		}
		ups = append(ups, upstream.New(cfg, opt.transport, log))
		cfgs = append(cfgs, cfg)
	}
	met := metrics.New(c, ups)
	reg := registry.New(c, ups, "docker.io", log)
	if len(opt.derive) > 0 {
		reg.Derive(derivedSource(t, c, &config.Config{Upstreams: cfgs, Derive: opt.derive}, ups, log))
	}
	srv := httptest.NewUnstartedServer(httpx.Chain(reg, httpx.RequestID, met.Middleware))
	httpx.Tune(srv.Config) // as cmd/entrepot serves
	srv.Start()
	cs := &cacheServer{Server: srv, cache: c, dir: dir, cancel: cancel, owned: owned, metrics: met}
	t.Cleanup(cs.Close)
	return cs
}

// derivedSource is the source of cfg's derived images, as cmd/entrepot
// builds it.
func derivedSource(t *testing.T, c *cache.Cache, cfg *config.Config, ups []*upstream.Client, log *slog.Logger) *derive.Source {
	t.Helper()
	var bases []derive.Base
	for _, s := range cfg.Derive {
		b, err := cfg.Base(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range ups {
			if u.Name() == b.Upstream {
				bases = append(bases, derive.Base{Spec: s, Source: u, Repo: b.Repo, Tag: b.Tag, Digest: b.Digest})
			}
		}
	}
	return derive.NewSource(c, bases, log)
}

// Close waits for the fills under way to commit, then stops the server,
// ends the cache's fills (so that none writes into the data directory as
// it is removed) and releases the store.
func (c *cacheServer) Close() {
	c.once.Do(func() {
		deadline := time.Now().Add(10 * time.Second)
		for c.cache.Filling() > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		c.Server.Close()
		c.cancel()
		c.cache.Close()
		if c.owned {
			c.dir.Close()
		}
	})
}

func (c *cacheServer) host() string { return strings.TrimPrefix(c.URL, "http://") }

// do sends one request to the cache and returns the response with its
// body read.
func (c *cacheServer) do(t *testing.T, method, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, c.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, body
}

func nopLog() *slog.Logger {
	if os.Getenv("ENTREPOT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// blackHole accepts connections and never answers.
func blackHole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String()
}

// closedPort returns a URL on which nothing listens: connection refused.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
