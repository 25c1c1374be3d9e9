package cache_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/oci"
)

// BenchmarkFill measures the fill's stream-and-store loop: a cold 16 MiB
// blob from a source in memory, hashed, spooled, committed and streamed to
// a client.
func BenchmarkFill(b *testing.B) {
	blob := make([]byte, 16<<20)
	rand.Read(blob)
	src := newSource()
	d := src.addBlob(blob)
	b.SetBytes(int64(len(blob)))
	for b.Loop() {
		b.StopTimer()
		c := newTestCache(b, newStore(b), cache.Options{}) // cold every time
		b.StartTimer()
		bl, err := c.Blob(context.Background(), src, "library/x", d)
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
	src := newSource()
	d := src.addManifest(oci.MediaTypeImageManifest, manifest)
	c := newTestCache(b, newStore(b), cache.Options{})
	q := cache.ManifestRequest{Source: src, Repo: "library/x", Digest: d}
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

// BenchmarkEvict measures eviction: a store of images (a manifest, a
// config and two layers each) evicted whole, as objects (blobs) and bytes
// removed per second, catalog read included.
func BenchmarkEvict(b *testing.B) {
	for _, bc := range []struct {
		name          string
		images, layer int
	}{
		{"small-blobs", 500, 4 << 10},
		{"large-blobs", 20, 8 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := newSource()
			for i := range bc.images {
				addImage(src, fmt.Sprint(i), randomBytes(bc.layer), randomBytes(bc.layer))
			}
			var objects, bytes int64
			var took time.Duration
			for b.Loop() {
				b.StopTimer()
				st := newStore(b)
				c := newTestCache(b, st, cache.Options{Limits: cache.Limits{MaxSize: 1, High: 0.95, Low: 0.85}})
				for i := range bc.images {
					if err := pull(b, c, src, fmt.Sprint(i)); err != nil {
						b.Fatal(err)
					}
				}
				for c.Filling() > 0 {
					time.Sleep(time.Millisecond)
				}
				start := time.Now()
				b.StartTimer()
				r, err := c.Evict(context.Background())
				if err != nil || r.Blobs+r.Manifests != bc.images*4 {
					b.Fatalf("evicted %+v, %v; want %d objects", r, err, bc.images*4)
				}
				took += time.Since(start)
				objects += int64(r.Blobs + r.Manifests)
				bytes += r.Bytes
			}
			b.ReportMetric(float64(objects)/took.Seconds(), "objects/s")
			b.ReportMetric(float64(bytes)/took.Seconds()/(1<<30), "GiB/s")
		})
	}
}
