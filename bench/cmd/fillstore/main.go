// Command fillstore fills an Entrepot data directory (stopped) with
// synthetic content in Entrepot's filesystem store layout, so that the
// benchmark can compare start-up and lookups on a large store with an empty
// one:
//
//	blobs/sha256/<2 hex>/<hex>                  content that hashes to its name
//	records/manifests/sha256/<hex>              {"digest","mediaType","size"}
//	records/repos/<upstream>/<repo>/_tags/<tag> {"digest","mediaType","size","checked"}
//
// (internal/store/fs/fs.go and internal/cache/{manifest,document}.go.)
// --tags images are made, each an OCI image manifest (a blob itself) of one
// config and enough small random layers that the store holds --blobs blobs
// in all; each manifest gets a media-type record and one tag, spread over
// --repos repositories library/fill-NNN. It prints a JSON summary and writes
// the manifests' digests, one a line, to --digests.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

const (
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// manifestRecord and tagRecord mirror cache.Manifest and cache.tagRecord.
type manifestRecord struct {
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

type tagRecord struct {
	manifestRecord
	Checked time.Time `json:"checked"`
}

func main() {
	data := flag.String("data", "", "Entrepot data directory to fill (required; Entrepot must not be running on it)")
	blobs := flag.Int("blobs", 100000, "blobs in all (manifests, configs and layers)")
	tags := flag.Int("tags", 10000, "images, one manifest and one tag each")
	repos := flag.Int("repos", 100, "repositories to spread the tags over")
	upstream := flag.String("upstream", "docker.io", "upstream name the tag records are under")
	digests := flag.String("digests", "", "file to write the manifests' digests to, one a line")
	workers := flag.Int("workers", 8, "concurrent writers")
	flag.Parse()
	if *data == "" || *tags < 1 || *repos < 1 || *blobs < 3**tags {
		fmt.Fprintln(os.Stderr, "fillstore: --data is required and --blobs must be at least 3 × --tags")
		flag.Usage()
		os.Exit(2)
	}
	t0 := time.Now()
	f := &filler{data: *data, upstream: *upstream, checked: time.Now().UTC()}
	if err := f.mkdirs(); err != nil {
		fail(err)
	}
	// Layers per image: the blobs left after a manifest and a config
	// each, shared out as evenly as possible.
	layers := *blobs - 2**tags
	manifestDigests := make([]string, *tags)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, *workers)
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				i := int(next.Add(1) - 1)
				if i >= *tags {
					return
				}
				n := layers / *tags
				if i < layers%*tags {
					n++
				}
				repo := fmt.Sprintf("library/fill-%03d", i%*repos)
				tag := fmt.Sprintf("t%05d", i)
				d, err := f.image(rng, repo, tag, i, n)
				if err != nil {
					errc <- err
					return
				}
				manifestDigests[i] = d
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		fail(err)
	}
	if *digests != "" {
		out, err := os.Create(*digests)
		if err != nil {
			fail(err)
		}
		for _, d := range manifestDigests {
			fmt.Fprintln(out, d)
		}
		if err := out.Close(); err != nil {
			fail(err)
		}
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"blobs": f.blobs.Load(), "manifests": *tags, "tags": *tags, "repos": *repos,
		"bytes": f.bytes.Load(), "seconds": time.Since(t0).Seconds(),
	})
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fillstore:", err)
	os.Exit(1)
}

type filler struct {
	data, upstream string
	checked        time.Time
	blobs, bytes   atomic.Int64
}

func (f *filler) mkdirs() error {
	for i := range 256 {
		if err := os.MkdirAll(filepath.Join(f.data, "blobs", "sha256", fmt.Sprintf("%02x", i)), 0o755); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(f.data, "records", "manifests", "sha256"), 0o755)
}

// image writes n random layers, a config, the manifest, its record and its
// tag, and returns the manifest's digest.
func (f *filler) image(rng *rand.Rand, repo, tag string, i, n int) (string, error) {
	var layers []descriptor
	for range n {
		b := make([]byte, 64+rng.IntN(961))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		d, err := f.blob(b)
		if err != nil {
			return "", err
		}
		layers = append(layers, descriptor{MediaType: mtLayer, Digest: d, Size: int64(len(b))})
	}
	diffIDs := make([]string, len(layers))
	for j, l := range layers {
		diffIDs[j] = l.Digest
	}
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": "2024-05-22T00:00:00Z",
		"config": map[string]any{"Env": []string{fmt.Sprintf("FILL=%d", i)}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		return "", err
	}
	cd, err := f.blob(config)
	if err != nil {
		return "", err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtManifest,
		"config":        descriptor{MediaType: mtConfig, Digest: cd, Size: int64(len(config))},
		"layers":        layers,
	})
	if err != nil {
		return "", err
	}
	md, err := f.blob(manifest)
	if err != nil {
		return "", err
	}
	rec := manifestRecord{Digest: md, MediaType: mtManifest, Size: int64(len(manifest))}
	if err := f.record(filepath.Join("manifests", "sha256", md[len("sha256:"):]), rec); err != nil {
		return "", err
	}
	if err := f.record(filepath.Join("repos", f.upstream, filepath.FromSlash(repo), "_tags", tag), tagRecord{rec, f.checked}); err != nil {
		return "", err
	}
	return md, nil
}

// blob writes b under its digest and returns the digest.
func (f *filler) blob(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(f.data, "blobs", "sha256", h[:2], h), b, 0o644); err != nil {
		return "", err
	}
	f.blobs.Add(1)
	f.bytes.Add(int64(len(b)))
	return "sha256:" + h, nil
}

func (f *filler) record(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p := filepath.Join(f.data, "records", key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}
