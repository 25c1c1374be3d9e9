// Command seed pushes the benchmark's images to a plain-HTTP registry (the
// benchmark's upstream) and writes every layer also as a file named by its
// hex digest under --blob-dir, for nginx to serve the same bytes.
//
// The images, all OCI, each in its own repository with tag "1":
//
//   - library/bench-small: one layer of --small-mib MiB;
//   - library/bench-large: one layer of --large-mib MiB;
//   - library/bench-layers: --layers layers of --layer-min-mib to
//     --layer-max-mib MiB each (sizes drawn with a fixed seed).
//
// Layers are random bytes (they do not compress) labelled tar+gzip: no
// client under test unpacks them, and every digest is the real SHA-256 of
// the bytes. The same flags always give the same bytes and digests.
//
// It prints a JSON description of the images (digests, sizes, media types)
// on stdout.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

const (
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Image is what seed prints for each image.
type Image struct {
	Repo     string       `json:"repo"`
	Tag      string       `json:"tag"`
	Manifest Descriptor   `json:"manifest"`
	Config   Descriptor   `json:"config"`
	Layers   []Descriptor `json:"layers"`
	// Bytes is the sum of the layers' and the config's sizes.
	Bytes int64 `json:"bytes"`
}

func main() {
	registry := flag.String("registry", "", "host:port of the plain-HTTP registry to seed (required)")
	blobDir := flag.String("blob-dir", "", "directory to write every layer to, as a file named by its hex digest (required)")
	smallMiB := flag.Int("small-mib", 256, "size in MiB of library/bench-small's layer")
	largeMiB := flag.Int("large-mib", 1024, "size in MiB of library/bench-large's layer")
	layers := flag.Int("layers", 40, "number of layers of library/bench-layers")
	layerMin := flag.Int("layer-min-mib", 1, "smallest layer of library/bench-layers, MiB")
	layerMax := flag.Int("layer-max-mib", 20, "largest layer of library/bench-layers, MiB")
	flag.Parse()
	if *registry == "" || *blobDir == "" || flag.NArg() > 0 || *layerMin < 1 || *layerMax < *layerMin {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s := &seeder{base: "http://" + *registry, dir: *blobDir, client: &http.Client{}}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		fail(err)
	}

	rng := rand.New(rand.NewPCG(40, 20))
	var sizes []int64
	for range *layers {
		// Whole MiB plus a random tail, so sizes are not all aligned.
		mib := *layerMin + rng.IntN(*layerMax-*layerMin+1)
		sizes = append(sizes, int64(mib)<<20-int64(rng.IntN(4096)))
	}
	out := map[string]*Image{}
	for _, im := range []struct {
		key, repo string
		sizes     []int64
	}{
		{"small", "library/bench-small", []int64{int64(*smallMiB) << 20}},
		{"large", "library/bench-large", []int64{int64(*largeMiB) << 20}},
		{"layers", "library/bench-layers", sizes},
	} {
		t0 := time.Now()
		img, err := s.pushImage(ctx, im.key, im.repo, im.sizes)
		if err != nil {
			fail(fmt.Errorf("%s: %w", im.repo, err))
		}
		out[im.key] = img
		fmt.Fprintf(os.Stderr, "seed: %s:1 %s (%d layers, %d bytes) in %.1fs\n",
			im.repo, img.Manifest.Digest, len(img.Layers), img.Bytes, time.Since(t0).Seconds())
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "seed:", err)
	os.Exit(1)
}

type seeder struct {
	base   string
	dir    string
	client *http.Client
}

// pushImage writes and pushes each layer, then the config and the manifest.
func (s *seeder) pushImage(ctx context.Context, key, repo string, sizes []int64) (*Image, error) {
	img := &Image{Repo: repo, Tag: "1"}
	var diffIDs []string
	for i, size := range sizes {
		var seed [32]byte
		copy(seed[:], fmt.Sprintf("entrepot-bench/%s/%d", key, i))
		d, err := s.writeLayer(rand.NewChaCha8(seed), size)
		if err != nil {
			return nil, err
		}
		if err := s.pushBlob(ctx, repo, d, filepath.Join(s.dir, d[len("sha256:"):])); err != nil {
			return nil, err
		}
		img.Layers = append(img.Layers, Descriptor{MediaType: mtLayer, Digest: d, Size: size})
		img.Bytes += size
		// The bytes are not a real tar.gz; the diff ID is a stand-in
		// that no client under test checks.
		diffIDs = append(diffIDs, d)
	}
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2024-05-22T00:00:00Z",
		"config":       map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		return nil, err
	}
	img.Config = Descriptor{MediaType: mtConfig, Digest: digestOf(config), Size: int64(len(config))}
	img.Bytes += img.Config.Size
	if err := s.pushBytes(ctx, repo, img.Config.Digest, config); err != nil {
		return nil, err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtManifest,
		"config":        img.Config,
		"layers":        img.Layers,
	})
	if err != nil {
		return nil, err
	}
	img.Manifest = Descriptor{MediaType: mtManifest, Digest: digestOf(manifest), Size: int64(len(manifest))}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/v2/"+repo+"/manifests/"+img.Tag, bytes.NewReader(manifest))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mtManifest)
	if err := s.expect(req, http.StatusCreated); err != nil {
		return nil, fmt.Errorf("put manifest: %w", err)
	}
	return img, nil
}

// writeLayer writes size bytes of rng to the blob directory, named by their
// digest, and returns the digest.
func (s *seeder) writeLayer(rng io.Reader, size int64) (string, error) {
	f, err := os.CreateTemp(s.dir, ".layer-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	h := sha256.New()
	if _, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(rng, size), make([]byte, 1<<20)); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	hexd := hex.EncodeToString(h.Sum(nil))
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(f.Name(), filepath.Join(s.dir, hexd)); err != nil {
		return "", err
	}
	return "sha256:" + hexd, nil
}

func (s *seeder) pushBlob(ctx context.Context, repo, d, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return s.upload(ctx, repo, d, f, fi.Size())
}

func (s *seeder) pushBytes(ctx context.Context, repo, d string, b []byte) error {
	return s.upload(ctx, repo, d, bytes.NewReader(b), int64(len(b)))
}

// upload is a monolithic blob upload: POST for a session, PUT the bytes.
func (s *seeder) upload(ctx context.Context, repo, d string, body io.Reader, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start upload of %s: status %s", d, resp.Status)
	}
	loc, err := url.Parse(s.base + "/")
	if err == nil {
		loc, err = loc.Parse(resp.Header.Get("Location"))
	}
	if err != nil {
		return fmt.Errorf("upload location: %w", err)
	}
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	if err := s.expect(req, http.StatusCreated); err != nil {
		return fmt.Errorf("upload %s: %w", d, err)
	}
	return nil
}

func (s *seeder) expect(req *http.Request, status int) error {
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != status {
		return fmt.Errorf("status %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
