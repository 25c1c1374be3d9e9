// Command entrepot is a pull-through cache for container registries.
//
//	entrepot serve [--config FILE] [--listen ADDR] [--data DIR] [--prefetch N] [--upstream NAME=URL]...
//	entrepot version
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
	"strings"
	"syscall"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/registry"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/upstream"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `usage:
  entrepot serve [--config FILE] [--listen ADDR] [--data DIR] [--prefetch N] [--upstream NAME=URL]...
  entrepot version`

func main() {
	if len(os.Args) < 2 {
		fail(2, usage)
	}
	switch os.Args[1] {
	case "serve":
		cfg, err := config.Parse(os.Args[2:], os.Getenv)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Println(usage)
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
	case "version", "--version", "-v":
		fmt.Println("entrepot", buildVersion())
	case "help", "--help", "-h":
		fmt.Println(usage)
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
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := fs.New(cfg.Data)
	if err != nil {
		return err
	}
	defer dir.Close()
	st := dir.Store()
	fillCtx, cancelFills := context.WithCancel(context.Background())
	c := cache.New(fillCtx, st, cache.Options{Prefetch: cfg.Prefetch}, log)
	defer func() { cancelFills(); c.Close() }() // fills left behind remove their temporary files
	ups := make([]*upstream.Client, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		ups[i] = upstream.New(u, nil, log)
	}

	srv := &http.Server{
		Handler:           routes(registry.New(c, ups, cfg.Default, log), st, log),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: a large blob to a slow client takes as long
		// as it takes.
	}
	httpx.Tune(srv)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	names := make([]string, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		names[i] = u.Name + "=" + u.URL.Redacted()
	}
	log.Info("entrepot serving", "version", buildVersion(), "listen", ln.Addr().String(),
		"data", cfg.Data, "default", cfg.Default, "upstreams", names)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal ends the process at once
	log.Info("shutting down: draining requests", "timeout", drainTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); errors.Is(err, context.DeadlineExceeded) {
		// Long downloads still running: cut them; their fills are
		// cancelled with the cache and leave nothing behind.
		log.Warn("drain timeout: closing remaining connections")
		return srv.Close()
	} else if err != nil {
		return err
	}
	return nil
}

// routes is the server's mux: health checks, and the registry API behind
// the request pipeline.
func routes(reg http.Handler, st store.Store, log *slog.Logger) http.Handler {
	// Metrics and client authentication attach here, in this order.
	metrics, auth := httpx.Middleware(httpx.Pass), httpx.Middleware(httpx.Pass)
	api := httpx.Chain(reg, httpx.RequestID, httpx.AccessLog(log), metrics, auth)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := writable(r.Context(), st); err != nil {
			log.Warn("not ready: store not writable", "err", err)
			http.Error(w, "store not writable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
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
	f, err := st.Spool.Create(ctx)
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

// drainTimeout bounds how long shutdown waits for requests in progress.
const drainTimeout = 30 * time.Second

// logLevel reads ENTREPOT_LOG_LEVEL (debug, info, warn, error; default info).
func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("ENTREPOT_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
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
