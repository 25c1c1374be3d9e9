package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/entrepot/entrepot/internal/store/s3/s3test"
	"github.com/entrepot/entrepot/internal/testenv"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// BenchmarkWarmBlob is the warm throughput of a 256 MiB blob (stored:
// its fill is done before the clock starts) served by one replica from
// its filesystem store, from an S3 store (versitygw, on loopback) and
// with redirect.enabled (a 307 to a presigned URL of the bucket, which
// the client follows), to 1 and to 8 concurrent clients. Each client
// reads every byte; the first read of each store is checked against the
// digest.
//
//	go test -run '^$' -bench WarmBlob -benchtime 4x -count 5 ./cmd/entrepot
func BenchmarkWarmBlob(b *testing.B) {
	const size = 256 << 20
	bin := filepath.Join(b.TempDir(), "entrepot")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	origin := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	b.Cleanup(origin.Close)
	img, err := random.Image(size, 1)
	if err != nil {
		b.Fatal(err)
	}
	ref, _ := name.ParseReference(strings.TrimPrefix(origin.URL, "http://") + "/library/big:1")
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	bucket := s3test.Start(b)
	s3conf := fmt.Sprintf("storage:\n  s3: {endpoint: %s, region: %s, bucket: %s, path_style: true, access_key_env: S3_KEY, secret_key_env: S3_SECRET}\n",
		bucket.Endpoint, bucket.Region, bucket.Bucket)
	for _, store := range []struct{ name, conf string }{
		{"fs", ""},
		{"s3", s3conf},
		{"redirect", s3conf + "redirect: {enabled: true, clients: [127.0.0.0/8]}\n"},
	} {
		addr := testenv.Addr(testenv.FreePort(b))
		conf := filepath.Join(b.TempDir(), "entrepot.yaml")
		yaml := fmt.Sprintf("listen: %s\ndata: %s\nprefetch: 0\nadmin: {listen: %s}\nupstreams:\n  - {name: docker.io, url: %s}\n%s",
			addr, b.TempDir(), testenv.Addr(testenv.FreePort(b)), origin.URL, store.conf)
		if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
			b.Fatal(err)
		}
		p := testenv.Start(b, bin, []string{"serve", "--config", conf, "--log-level", "warn"},
			[]string{"S3_KEY=" + bucket.AccessKey, "S3_SECRET=" + bucket.SecretKey}, testenv.DialReady(addr))
		url := "http://" + addr + "/v2/docker.io/library/big/blobs/" + d.String()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		// The fill, then one warm read checked against the digest.
		for range 2 {
			if got := get(b, client, url, true); got != d.Hex {
				b.Fatalf("%s: the blob's sha256 is %s, want %s", store.name, got, d.Hex)
			}
		}
		for _, clients := range []int{1, 8} {
			b.Run(fmt.Sprintf("store=%s/clients=%d", store.name, clients), func(b *testing.B) {
				b.SetBytes(int64(size * clients))
				for b.Loop() {
					var wg sync.WaitGroup
					for range clients {
						wg.Go(func() { get(b, client, url, false) })
					}
					wg.Wait()
				}
			})
		}
		p.Kill()
	}
}

// get reads url whole (following a redirect) and returns its sha256 when
// hash is set.
func get(b *testing.B, c *http.Client, url string, hash bool) string {
	resp, err := c.Get(url)
	if err != nil {
		b.Error(err)
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("GET %s: %s", url, resp.Status)
		return ""
	}
	if !hash {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Error(err)
		}
		return ""
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		b.Error(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
