// Command entrepot is a pull-through cache for container registries.
//
//	entrepot serve [CONFIG.yaml] [--config FILE] [--listen ADDR] [--data DIR] [--tls-cert FILE --tls-key FILE] [--upstream NAME=URL]... (entrepot serve --help for all)
//	entrepot check [CONFIG.yaml] [--config FILE] [--json]
//	entrepot client-config --url URL [--config FILE] [--for CLIENT] [--write DIR]
//	entrepot webhook [CONFIG.yaml] [--config FILE] [--cache HOST] | entrepot webhook manifests [...]
//	entrepot rewrite --cache HOST[:PORT][/PATH] IMAGE... | -f FILE
//	entrepot ls [--json] [REPOSITORY]
//	entrepot warm [--platform OS/ARCH]... IMAGE...
//	entrepot freeze IMAGE:TAG | unfreeze IMAGE:TAG
//	entrepot purge IMAGE[:TAG|@DIGEST] | REPOSITORY
//	entrepot version
//
// The commands other than serve and version talk to a running server's
// admin API (--admin URL, default http://127.0.0.1:5001; the token from
// ENTREPOT_ADMIN_TOKEN).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/entrepot/entrepot/internal/access"
	"github.com/entrepot/entrepot/internal/admin"
	"github.com/entrepot/entrepot/internal/audit"
	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/cluster"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/dashboard"
	"github.com/entrepot/entrepot/internal/derive"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/metrics"
	"github.com/entrepot/entrepot/internal/registry"
	"github.com/entrepot/entrepot/internal/route"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/throttle"
	"github.com/entrepot/entrepot/internal/tlsx"
	"github.com/entrepot/entrepot/internal/upstream"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	if len(os.Args) < 2 {
		fail(2, usage)
	}
	switch os.Args[1] {
	case "serve":
		cfg, err := config.Parse(os.Args[2:], os.Getenv)
		if errors.Is(err, flag.ErrHelp) {
			config.Usage(os.Stdout)
			return
		}
		if err != nil {
			fail(2, "entrepot: "+err.Error())
		}
		if err := serve(cfg); errors.Is(err, fs.ErrLocked) {
			fail(2, "entrepot: "+err.Error())
		} else if err != nil {
			fail(1, "entrepot: "+err.Error())
		}
	case "ls", "warm", "freeze", "unfreeze", "purge":
		os.Exit(runClient(os.Args[1], os.Args[2:], os.Stdout, os.Stderr))
	case "client-config":
		os.Exit(runClientConfig(os.Args[2:], os.Stdout, os.Stderr))
	case "check":
		os.Exit(runCheck(os.Args[2:], os.Stdout, os.Stderr))
	case "webhook":
		os.Exit(runWebhook(os.Args[2:], os.Stdout, os.Stderr))
	case "rewrite":
		os.Exit(runRewrite(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	case "version", "--version", "-v":
		fmt.Println("entrepot", buildVersion())
	case "help", "--help", "-h":
		os.Exit(runHelp(os.Args[2:], os.Stdout, os.Stderr))
	default:
		fail(2, fmt.Sprintf("entrepot: unknown command %q\n%s", os.Args[1], usage))
	}
}

func fail(code int, msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(code)
}

// serve runs the cache until SIGINT or SIGTERM, then drains requests.
func serve(cfg *config.Config) error {
	log := newLogger(os.Stderr, cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := fs.New(cfg.Data)
	if err != nil {
		return err
	}
	defer dir.Close()
	st, err := openStore(ctx, cfg, dir, log)
	if err != nil {
		return err
	}
	peers, err := joinCluster(ctx, cfg, log)
	if err != nil {
		return err
	}
	if peers != nil {
		defer peers.Close() // after the fills: their claims go first
	}
	fillCtx, cancelFills := context.WithCancel(context.Background())
	c := cache.New(fillCtx, st, cache.Options{Prefetch: cfg.Prefetch, Limits: limits(cfg), Policies: policies(cfg.Upstreams), MaxFills: maxFills(cfg.Upstreams), Conns: conns(cfg.Upstreams), Parallel: parallel(cfg), Cluster: asCluster(peers)}, log)
	defer func() { cancelFills(); c.Close() }() // fills left behind remove their temporary files
	maintainCtx, stopMaintain := context.WithCancel(context.Background())
	maintained := make(chan struct{})
	go func() { c.Maintain(maintainCtx); close(maintained) }()
	defer func() { stopMaintain(); <-maintained }() // a last flush of the pull times
	ups := make([]*upstream.Client, len(cfg.Upstreams))
	sources := make([]cache.Source, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		ups[i] = upstream.New(u, nil, log)
		if peers != nil {
			ups[i].Share(peers)
		}
		sources[i] = ups[i]
	}
	derived := deriveSource(c, cfg, ups, log)
	if derived != nil {
		sources = append(sources, derived)
	}
	adm := admin.New(c, sources, cfg.Admin.Token.Reveal(), log)
	warmups, err := adm.WarmRequests(warmImages(cfg.Warm))
	if err != nil && len(cfg.Warm.Images) > 0 {
		return fmt.Errorf("warm.images: %w", err)
	}

	met := metrics.New(c, ups)
	if peers != nil {
		met.Cluster(func() (bool, int, bool) {
			st := peers.Status()
			return st.Up, st.Replicas, st.Leading
		})
	}
	adm.Handle("GET /metrics", met.Handler())
	dopts := dashboard.Options{Counters: met.Counters(), Version: buildVersion()}
	if derived != nil {
		dopts.Derived = derived.Images
	}
	dash := dashboard.New(c, ups, dopts)
	dash.Register(adm)
	dashCtx, stopDash := context.WithCancel(context.Background())
	defer stopDash()
	go dash.Run(dashCtx)
	var draining atomic.Bool
	var gate *access.Gate
	if cfg.Auth.Enabled() {
		table := route.NewTable(ups, cfg.Default)
		if derived != nil {
			table.Derive(derived)
		}
		if gate, err = access.New(cfg.Auth, cfg.Access, table, log); err != nil {
			return err
		}
		adm.AllowAdmins(gate.Admin)
	}
	var clients *throttle.Clients
	if cfg.Limits.ClientRPS > 0 {
		clients = throttle.New(cfg.Limits.ClientRPS, cfg.Limits.ClientBurst)
	}
	var trail *audit.Log
	if cfg.Audit.File != "" {
		if trail, err = audit.Open(cfg.Audit.File); err != nil {
			return err
		}
		defer trail.Close()
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-hup:
					if err := trail.Reopen(); err != nil {
						log.Error("audit trail not reopened: writing on to the old file", "err", err)
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	reg := registry.New(c, ups, cfg.Default, log)
	if derived != nil {
		if trail != nil {
			derived.Built = func(st derive.Status) { auditBuild(trail, st, log) }
		}
		reg.Derive(derived)
	}
	reg.Redirect = redirector(cfg.Redirect)
	srv := &http.Server{
		Handler:           routes(reg, listener{st: st, log: log, metrics: met, dashboard: dash, gate: gate, audit: trail, clients: clients, publicMetrics: cfg.Metrics, draining: &draining, peers: peers, cache: c}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Registry requests carry a path and a token: 64 KiB is plenty,
		// and bounds what a client makes the server hold.
		MaxHeaderBytes: 64 << 10,
		// No WriteTimeout: a large blob to a slow client takes as long
		// as it takes.
	}
	httpx.Tune(srv)
	if cfg.TLS.Enabled() {
		files, err := tlsx.Load(cfg.TLS, log)
		if err != nil {
			return err
		}
		srv.TLSConfig = files.Config()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	adminLn, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("admin.listen: %w", err)
	}
	adminSrv := &http.Server{Handler: adm, ReadHeaderTimeout: 10 * time.Second}
	names := make([]string, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		names[i] = u.Name + "=" + u.URL.Redacted()
	}
	log.Info("entrepot serving", "version", buildVersion(), "listen", ln.Addr().String(),
		"admin", adminLn.Addr().String(), "data", cfg.Data, "default", cfg.Default, "upstreams", names,
		"max_size", cfg.Storage.MaxSize, "s3", cfg.Storage.S3 != nil, "cluster", cfg.Cluster.Enabled(), "redirect", cfg.Redirect.Enabled, "tls", cfg.TLS.Enabled(), "client_certificates", cfg.TLS.ClientCA != "",
		"auth", cfg.Auth.Enabled(), "access_rules", len(cfg.Access))

	errc := make(chan error, 2)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	go func() { errc <- adminSrv.Serve(adminLn) }()
	warmCtx, stopWarm := context.WithCancel(ctx)
	warmed := make(chan struct{})
	go func() { runWarm(warmCtx, adm, warmups, cfg.Warm.Every, asCluster(peers), log); close(warmed) }()
	defer func() { stopWarm(); <-warmed }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stop()               // a second signal ends the process at once
	draining.Store(true) // /readyz answers 503 from now on
	log.Info("shutting down: running pulls and fills may finish", "grace", cfg.ShutdownGrace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	// New requests are still served for a moment, while load balancers
	// and Kubernetes see /readyz fail and stop sending them; closing the
	// listener at once would refuse the ones already on their way.
	time.Sleep(drainDelay(cfg.ShutdownGrace))
	adminSrv.Close() // a warm-up's stream ends; its fills end with the cache
	err = srv.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Long downloads still running: cut them; their fills are
		// cancelled with the cache and leave nothing behind.
		log.Warn("shutdown grace over: closing remaining connections")
		return srv.Close()
	} else if err != nil {
		return err
	}
	// Fills no client waits for any more (prefetches) finish within the
	// grace too; past it they are cancelled and leave nothing behind.
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-shutdownCtx.Done():
		log.Warn("shutdown grace over: cancelling the fills still running")
	}
	return nil
}

// drainDelay is how long the listener stays open after SIGTERM, with
// /readyz failing: a sixth of the grace, at most 5 s.
func drainDelay(grace time.Duration) time.Duration { return min(grace/6, 5*time.Second) }

// maxFills are the upstreams' bounds on fills, for the cache.
func maxFills(ups []config.Upstream) map[string]int {
	m := make(map[string]int, len(ups))
	for _, u := range ups {
		m[u.Name] = u.MaxFills
	}
	return m
}

// conns are the upstreams' connection budgets, for the cache.
func conns(ups []config.Upstream) map[string]int {
	m := make(map[string]int, len(ups))
	for _, u := range ups {
		m[u.Name] = u.MaxConnections
	}
	return m
}

// parallel is how the upstreams' large blobs are fetched, for the cache.
// Derived images' base blobs come from their bases' upstreams: as the
// first one's settings say.
func parallel(cfg *config.Config) map[string]cache.Parallel {
	m := make(map[string]cache.Parallel, len(cfg.Upstreams)+1)
	for _, u := range cfg.Upstreams {
		m[u.Name] = cache.Parallel{MinSize: u.Parallel.MinSize, Parts: u.Parallel.Parts, PartSize: u.Parallel.PartSize, StreamRate: u.Parallel.StreamRate}
	}
	if len(cfg.Derive) > 0 {
		if b, err := cfg.Base(cfg.Derive[0]); err == nil {
			m[config.DerivedName] = m[b.Upstream]
		}
	}
	return m
}

// policies are the upstreams' approved-images policies, for the cache.
func policies(ups []config.Upstream) map[string]cache.ImagePolicy {
	p := make(map[string]cache.ImagePolicy, len(ups))
	for _, u := range ups {
		p[u.Name] = cache.ImagePolicy{Allow: u.Allow, Deny: u.Deny, ApprovedOnly: u.ApprovedOnly}
	}
	return p
}

// limits are the cache's limits of the storage section.
// deriveSource returns the source of the configured derived images, over
// the upstreams of their bases; nil when none is configured.
func deriveSource(c *cache.Cache, cfg *config.Config, ups []*upstream.Client, log *slog.Logger) *derive.Source {
	if len(cfg.Derive) == 0 {
		return nil
	}
	bases := make([]derive.Base, 0, len(cfg.Derive))
	for _, s := range cfg.Derive {
		b, _ := cfg.Base(s) // checked by config.Parse
		for _, u := range ups {
			if u.Name() == b.Upstream {
				bases = append(bases, derive.Base{Spec: s, Source: u, Repo: b.Repo, Tag: b.Tag, Digest: b.Digest})
			}
		}
	}
	return derive.NewSource(c, bases, log)
}

// auditBuild records in the trail the base a derived digest was built
// from.
func auditBuild(trail *audit.Log, st derive.Status, log *slog.Logger) {
	err := trail.Write(audit.Record{Time: st.Built, Method: "BUILD", Upstream: config.DerivedName, Repo: st.Name, Ref: st.Tag,
		Digest: st.Digest.String(), Kind: "derive", Decision: "allowed", Result: "built", Base: st.From + "@" + st.BaseDigest.String()})
	if err != nil {
		log.Error("audit trail: writing a derived build failed", "err", err)
	}
}

// limits are the store's bounds; derived images' tags are pinned while
// they are configured.
func limits(cfg *config.Config) cache.Limits {
	s := cfg.Storage
	pins := slices.Clone(s.Pin)
	for _, d := range cfg.Derive {
		pins = append(pins, config.DerivedName+"/"+d.Name+":"+d.DerivedTag())
	}
	return cache.Limits{MaxSize: s.MaxSize, High: s.HighWatermark, Low: s.LowWatermark, MaxIdle: s.MaxIdle, Pins: pins}
}

func warmImages(w config.Warm) []admin.Image {
	images := make([]admin.Image, len(w.Images))
	for i, img := range w.Images {
		images[i] = admin.Image{Image: img.Image, Platforms: img.Platforms}
	}
	return images
}

// runWarm warms the configured images at start and then every interval
// (never again when every is 0), logging each image's outcome, until ctx
// ends. In a cluster (peers), one replica warms for all each interval: the
// one that takes the warm-up's lock, held for the interval.
func runWarm(ctx context.Context, adm *admin.Server, reqs []cache.WarmRequest, every time.Duration, peers cache.Cluster, log *slog.Logger) {
	if len(reqs) == 0 {
		return
	}
	for {
		if peers == nil || leadWarm(ctx, peers, every) {
			runWarmOnce(ctx, adm, reqs, every, log)
		} else {
			log.Info("warm-up skipped: another replica runs it", "next_in", every)
		}
		if every <= 0 {
			return
		}
		select {
		case <-time.After(every):
		case <-ctx.Done():
			return
		}
	}
}

// leadWarm takes the cluster's warm-up lock for the interval, and tells
// whether it did. Without an interval (a warm-up at start only), it holds
// for an hour: replicas starting within it skip theirs.
func leadWarm(ctx context.Context, peers cache.Cluster, every time.Duration) bool {
	hold := every
	if hold <= 0 {
		hold = time.Hour
	}
	_, ok := peers.Lock(ctx, "warm-up", hold)
	return ok
}

// runWarmOnce warms the configured images once.
func runWarmOnce(ctx context.Context, adm *admin.Server, reqs []cache.WarmRequest, every time.Duration, log *slog.Logger) {
	start := time.Now()
	failed := adm.Warm(ctx, reqs, func(p cache.WarmProgress) {
		switch {
		case !p.Done:
		case p.Error != "":
			log.Warn("warm-up failed", "image", p.Image, "err", p.Error)
		default:
			log.Info("warmed", "image", p.Image, "digest", p.Digest, "manifests", p.Manifests,
				"layers", p.LayersTotal, "bytes", p.BytesTotal, "fetched", p.Fetched)
		}
	})
	log.Info("warm-up done", "images", len(reqs), "failed", failed, "took", time.Since(start).Round(time.Millisecond), "next_in", every)
}

// notifyContext is cancelled by SIGINT or SIGTERM.
func notifyContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// listener is what the registry API's listener serves besides the API.
type listener struct {
	st      store.Store
	log     *slog.Logger
	metrics *metrics.Metrics
	// dashboard notes the pulls and errors the dashboard lists.
	dashboard *dashboard.Dashboard
	// gate authenticates clients and applies the access rules; nil when
	// authentication is off.
	gate *access.Gate
	// audit records the pull decisions; nil without audit.file.
	audit *audit.Log
	// clients rate-limits each client; nil without limits.client_rps.
	clients *throttle.Clients
	// publicMetrics serves /metrics on this listener too (metrics: true).
	publicMetrics bool
	// draining is set once shutdown begins: /readyz answers 503.
	draining *atomic.Bool
	// peers are the cluster's other replicas, served their reads of
	// this one's fills; nil: alone.
	peers *cluster.Cluster
	cache *cache.Cache
}

// routes is the server's mux: health checks, metrics, and the registry API
// behind the request pipeline.
func routes(reg http.Handler, s listener) http.Handler {
	// The pipeline, outermost first: the layers configured, in the order
	// each needs (metrics, the dashboard and the audit trail see what the
	// access gate refused; the rate limit knows the client's name).
	mws := []httpx.Middleware{httpx.RequestID, httpx.AccessLog(s.log)}
	if s.metrics != nil {
		mws = append(mws, s.metrics.Middleware)
	}
	if s.dashboard != nil {
		mws = append(mws, s.dashboard.Middleware)
	}
	if s.audit != nil {
		mws = append(mws, s.audit.Middleware)
	}
	if s.gate != nil {
		mws = append(mws, s.gate.Middleware)
	}
	if s.clients != nil {
		mws = append(mws, s.clients.Middleware)
	}
	api := httpx.Chain(reg, mws...)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.draining != nil && s.draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if err := writable(r.Context(), s.st); err != nil {
			s.log.Warn("not ready: store not writable", "err", err)
			http.Error(w, "store not writable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
		if s.peers != nil {
			_, detail := s.peers.Ready()
			io.WriteString(w, detail+"\n")
		}
	})
	if s.peers != nil {
		mux.Handle(cluster.PeerPath, s.peers.Handler(s.cache))
	}
	if s.publicMetrics && s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	if s.gate != nil {
		mux.Handle("/token", httpx.Chain(http.HandlerFunc(s.gate.ServeToken), httpx.RequestID, httpx.AccessLog(s.log)))
	}
	mux.Handle("/", api) // the registry API answers every other path, with OCI errors
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The mux would redirect a path with dot segments or doubled
		// slashes to its clean form; the registry API refuses it instead,
		// with an OCI error, as a registry does.
		if unclean(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// unclean tells whether path has dot segments or doubled slashes.
func unclean(path string) bool {
	return strings.Contains(path, "//") || strings.Contains(path, "/./") || strings.Contains(path, "/../") ||
		strings.HasSuffix(path, "/.") || strings.HasSuffix(path, "/..")
}

// writable checks that the store takes writes: a spool file and a record.
func writable(ctx context.Context, st store.Store) error {
	f, err := st.Spool.Create(ctx, "")
	if err != nil {
		return err
	}
	_, err = f.Write([]byte("ready"))
	if derr := f.Discard(); err == nil {
		err = derr
	}
	if err != nil {
		return err
	}
	return st.Records.Put(ctx, "readyz", []byte(time.Now().UTC().Format(time.RFC3339)))
}

// newLogger returns the server's logger: text or JSON lines on w, from
// cfg.Level up.
func newLogger(w io.Writer, cfg config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}
