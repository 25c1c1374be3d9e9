package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/rewrite"
	"github.com/entrepot/entrepot/internal/tlsx"
	"github.com/entrepot/entrepot/internal/webhook"
)

// readyEvery is how often the webhook asks the cache whether it is ready.
const readyEvery = 3 * time.Second

const webhookUsage = `usage: entrepot webhook [CONFIG.yaml] [--config FILE] [--listen ADDR] [--cache HOST[:PORT][/PATH]] [--namespace NS] [--tls-cert FILE --tls-key FILE]
       entrepot webhook manifests [the same flags] [--image IMAGE] [--ca FILE]

The first serves the admission webhook (HTTPS; POST /mutate, GET /healthz);
the second prints its Kubernetes objects for kubectl apply. The configuration
file's webhook section and upstreams are read (see entrepot help config).`

// runWebhook is `entrepot webhook`.
func runWebhook(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "manifests" {
		return runWebhookManifests(args[1:], stdout, stderr)
	}
	cfg, err := config.ParseWebhook(args, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, webhookUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "entrepot webhook: "+err.Error())
		return 2
	}
	log := newLogger(stderr, cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serveWebhook(ctx, cfg, log, nil); err != nil {
		fmt.Fprintln(stderr, "entrepot webhook: "+err.Error())
		return 1
	}
	return 0
}

// serveWebhook serves the webhook until ctx ends. ready, when not nil,
// receives the listener's address once it accepts connections.
func serveWebhook(ctx context.Context, cfg *config.Webhook, log *slog.Logger, ready chan<- net.Addr) error {
	rw, err := rewrite.New(cfg.Cache, config.RewriteUpstreams(cfg.Upstreams), cfg.ExcludeImages)
	if err != nil {
		return err
	}
	files, err := tlsx.Load(cfg.TLS, log)
	if err != nil {
		return err
	}
	opt := webhook.Options{Rewriter: rw, ExcludeNamespaces: cfg.ExcludeNamespaces, PullSecret: cfg.PullSecret, Log: log}
	if cfg.RequireReady {
		client := &http.Client{Timeout: 2 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}
		if cfg.ReadyCA != "" {
			pool, err := config.LoadCertPool(cfg.ReadyCA)
			if err != nil {
				return fmt.Errorf("webhook.ready_ca: %w", err)
			}
			client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		// The check must not follow a redirect to another host.
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		readiness := webhook.NewReadiness(cfg.ReadyURL, client, readyEvery, log)
		go readiness.Run(ctx)
		opt.Ready = readiness.Ready
	}
	mux := http.NewServeMux()
	mux.Handle("/mutate", webhook.New(opt))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         files.Config(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	log.Info("webhook listening", "addr", ln.Addr().String(), "cache", cfg.Cache, "require_ready", cfg.RequireReady, "ready_url", cfg.ReadyURL, "exclude_namespaces", cfg.ExcludeNamespaces)
	if ready != nil {
		ready <- ln.Addr()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
