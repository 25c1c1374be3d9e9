package webhook

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Readiness polls the cache's readiness URL in the background, so that
// reviews read the last answer instead of waiting on the network.
type Readiness struct {
	url    string
	client *http.Client
	every  time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	checked bool
	ready   bool
	why     string
}

// NewReadiness returns a poller of url every interval with client (whose
// timeout bounds each check). It reads not ready until the first check
// answers.
func NewReadiness(url string, client *http.Client, every time.Duration, log *slog.Logger) *Readiness {
	return &Readiness{url: url, client: client, every: every, log: log, why: "not checked yet"}
}

// Ready tells whether the last check answered 200, and why not.
func (r *Readiness) Ready() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready, r.why
}

// Run checks until ctx ends, logging each change of state.
func (r *Readiness) Run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		r.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Readiness) check(ctx context.Context) {
	ready, why := true, ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		ready, why = false, err.Error()
	} else if resp, err := r.client.Do(req); err != nil {
		ready, why = false, err.Error()
	} else {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			ready, why = false, fmt.Sprintf("%s answered %s", r.url, resp.Status)
		}
	}
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	was, first := r.ready, !r.checked
	r.checked, r.ready, r.why = true, ready, why
	r.mu.Unlock()
	switch {
	case ready && !was:
		r.log.Info("webhook: the cache is ready: rewriting images", "url", r.url)
	case !ready && (was || first):
		r.log.Warn("webhook: the cache is not ready: admitting pods unchanged", "url", r.url, "why", why)
	case !ready:
		r.log.Debug("webhook: the cache is still not ready", "url", r.url, "why", why)
	}
}
