package main

import (
	"context"
	"errors"
	"github.com/opencontainers/go-digest"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/store/fs"
)

// fullSpool refuses every new file, as a full or read-only disk does.
type fullSpool struct{}

func (fullSpool) Create(context.Context, digest.Digest) (store.SpoolFile, error) {
	return nil, errors.New("no space left on device")
}

// /readyz tells whether the store takes writes; /healthz only that the
// process answers; everything else goes to the registry API.
func TestHealthChecks(t *testing.T) {
	dir, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	good := dir.Store()
	full := good
	full.Spool = fullSpool{}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, tc := range []struct {
		name       string
		st         store.Store
		method     string
		path       string
		wantStatus int
	}{
		{"healthz", good, "GET", "/healthz", 200},
		{"healthz HEAD", good, "HEAD", "/healthz", 200},
		{"readyz", good, "GET", "/readyz", 200},
		{"readyz with a full disk", full, "GET", "/readyz", 503},
		{"healthz with a full disk", full, "GET", "/healthz", 200},
		{"healthz POST goes to the API (which refuses it)", good, "POST", "/healthz", http.StatusTeapot},
		{"registry API", good, "GET", "/v2/", http.StatusTeapot},
		{"other paths to the API", good, "GET", "/metricsx", http.StatusTeapot},
		{"dot segments to the API, not redirected", good, "GET", "/v2/docker.io/../x/manifests/1", http.StatusTeapot},
		{"doubled slashes to the API, not redirected", good, "GET", "/v2/x//manifests/1", http.StatusTeapot},
	} {
		rec := httptest.NewRecorder()
		routes(api, listener{st: tc.st, log: slog.New(slog.DiscardHandler)}).ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.wantStatus {
			t.Errorf("%s: %s %s = %d, want %d", tc.name, tc.method, tc.path, rec.Code, tc.wantStatus)
		}
	}
}
