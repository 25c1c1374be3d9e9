package cache_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/store/fs"
	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/opencontainers/go-digest"
)

// origin serves one blob and one manifest, as a registry would.
func origin(b testing.TB, blob, manifest []byte) *cache.Upstream {
	bd, md := digest.FromBytes(blob), digest.FromBytes(manifest)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/library/x/blobs/" + bd.String():
			w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
			w.Write(blob)
		case "/v2/library/x/manifests/" + md.String():
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Docker-Content-Digest", md.String())
			w.Write(manifest)
		default:
			http.NotFound(w, r)
		}
	}))
	b.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return &cache.Upstream{Client: upstream.New(config.Upstream{Name: "docker.io", URL: u}, nil, nil)}
}

func newCache(b *testing.B) *cache.Cache {
	st, err := fs.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c := cache.New(context.Background(), st, cache.Options{}, slog.New(slog.DiscardHandler))
	b.Cleanup(c.Close)
	return c
}

// BenchmarkFill measures the fill's stream-and-store loop: a cold 16 MiB
// blob from a loopback upstream, hashed, stored and streamed to a client.
func BenchmarkFill(b *testing.B) {
	blob := make([]byte, 16<<20)
	rand.Read(blob)
	d := digest.FromBytes(blob)
	up := origin(b, blob, []byte("{}"))
	b.SetBytes(int64(len(blob)))
	for b.Loop() {
		b.StopTimer()
		c := newCache(b) // cold every time
		b.StartTimer()
		bl, err := c.Blob(context.Background(), up, "library/x", d)
		if err != nil {
			b.Fatal(err)
		}
		if err := bl.Copy(context.Background(), io.Discard, 0, -1); err != nil {
			b.Fatal(err)
		}
		bl.Close()
	}
}

// BenchmarkManifestByDigest measures the lookup of a stored manifest.
func BenchmarkManifestByDigest(b *testing.B) {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}`)
	d := digest.FromBytes(manifest)
	up := origin(b, nil, manifest)
	c := newCache(b)
	q := cache.ManifestRequest{Up: up, Repo: "library/x", Digest: d}
	if _, err := c.Manifest(context.Background(), q); err != nil { // fill it
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := c.Manifest(context.Background(), q)
		if err != nil || m.Digest != d {
			b.Fatal(err)
		}
	}
}
