package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/metrics"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/upstream"
)

// BenchmarkMiddleware is the cost of counting one answer: the request
// pipeline with and without the metrics middleware, over a handler that
// answers a 4 KiB hit as the registry handler fills in its Info.
func BenchmarkMiddleware(b *testing.B) {
	dir, err := fs.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	c := cache.New(context.Background(), dir.Store(), cache.Options{}, slog.New(slog.DiscardHandler))
	u, _ := url.Parse("http://127.0.0.1:1")
	ups := []*upstream.Client{upstream.New(config.NewUpstream("docker.io", u), nil, nil)}
	m := metrics.New(c, ups)
	body := make([]byte, 4096)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := httpx.InfoOf(r.Context())
		info.Upstream, info.Kind, info.Result = "docker.io", "blob", "hit"
		w.Write(body)
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"without", httpx.Chain(handler, httpx.RequestID)},
		{"with", httpx.Chain(handler, httpx.RequestID, m.Middleware)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/v2/library/x/blobs/sha256:0", nil)
			w := discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(p []byte) (int, error) { return io.Discard.Write(p) }
func (d discard) WriteHeader(int)             {}
