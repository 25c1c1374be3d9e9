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
// With --set wan it pushes the wan measurement's images instead, whose
// layers are real uncompressed tar archives (one file of random bytes
// each, the layer exactly its stated size), so that containerd can unpack
// them; their diff IDs are their digests:
//
//   - library/wan-blob: one layer of --wan-blob-mib MiB;
//   - library/wan-layers: --wan-layers layers of --wan-layer-mib MiB;
//   - library/wan-multi: an OCI index of two images, linux/amd64 and
//     linux/arm64, each of --wan-index-layers layers of --wan-layer-mib MiB
//     (the index has tag "1"; its images are pushed by digest).
//
// It prints a JSON description of the images (digests, sizes, media types)
// on stdout.
package main

import (
	"archive/tar"
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
	mtTarLayer = "application/vnd.oci.image.layer.v1.tar"
	mtIndex    = "application/vnd.oci.image.index.v1+json"
)

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType string    `json:"mediaType"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	Platform  *Platform `json:"platform,omitempty"`
}

// Platform is an image's platform, as an index names it.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Image is what seed prints for each image.
type Image struct {
	Repo string `json:"repo"`
	// Tag is empty for an image pushed by digest only (an index's).
	Tag      string       `json:"tag,omitempty"`
	Manifest Descriptor   `json:"manifest"`
	Config   Descriptor   `json:"config"`
	Layers   []Descriptor `json:"layers"`
	// Bytes is the sum of the layers' and the config's sizes.
	Bytes int64 `json:"bytes"`
}

// Index is what seed prints for a multi-platform image.
type Index struct {
	Repo     string     `json:"repo"`
	Tag      string     `json:"tag"`
	Manifest Descriptor `json:"manifest"`
	Images   []*Image   `json:"images"`
	// Bytes is the sum of its images' Bytes.
	Bytes int64 `json:"bytes"`
}

// imageSpec says what pushImage pushes.
type imageSpec struct {
	key, repo string
	sizes     []int64
	// tar: layers are tar archives (wan); otherwise random bytes
	// labelled tar+gzip.
	tar bool
	// tag is empty for an image pushed by digest only.
	tag      string
	platform Platform
}

func main() {
	registry := flag.String("registry", "", "host:port of the plain-HTTP registry to seed (required)")
	blobDir := flag.String("blob-dir", "", "directory to write every layer to, as a file named by its hex digest (required)")
	smallMiB := flag.Int("small-mib", 256, "size in MiB of library/bench-small's layer")
	largeMiB := flag.Int("large-mib", 1024, "size in MiB of library/bench-large's layer")
	layers := flag.Int("layers", 40, "number of layers of library/bench-layers")
	layerMin := flag.Int("layer-min-mib", 1, "smallest layer of library/bench-layers, MiB")
	layerMax := flag.Int("layer-max-mib", 20, "largest layer of library/bench-layers, MiB")
	set := flag.String("set", "default", "which images: default (bench-small, -large, -layers) or wan (wan-blob, -layers, -multi)")
	wanBlobMiB := flag.Int("wan-blob-mib", 256, "with --set wan: size in MiB of library/wan-blob's layer")
	wanLayers := flag.Int("wan-layers", 12, "with --set wan: number of layers of library/wan-layers")
	wanLayerMiB := flag.Int("wan-layer-mib", 8, "with --set wan: size in MiB of every layer of wan-layers and wan-multi")
	wanIndexLayers := flag.Int("wan-index-layers", 4, "with --set wan: layers of each of wan-multi's two images")
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
	switch *set {
	case "default":
	case "wan":
		if *wanBlobMiB < 1 || *wanLayers < 1 || *wanLayerMiB < 1 || *wanIndexLayers < 1 {
			fail(fmt.Errorf("--wan-*: every count and size must be at least 1"))
		}
		printJSON(s.seedWAN(ctx, *wanBlobMiB, *wanLayers, *wanLayerMiB, *wanIndexLayers))
		return
	default:
		fail(fmt.Errorf("--set %q: want default or wan", *set))
	}

	rng := rand.New(rand.NewPCG(40, 20))
	var sizes []int64
	for range *layers {
		// Whole MiB plus a random tail, so sizes are not all aligned.
		mib := *layerMin + rng.IntN(*layerMax-*layerMin+1)
		sizes = append(sizes, int64(mib)<<20-int64(rng.IntN(4096)))
	}
	out := map[string]*Image{}
	for _, im := range []imageSpec{
		{key: "small", repo: "library/bench-small", sizes: []int64{int64(*smallMiB) << 20}},
		{key: "large", repo: "library/bench-large", sizes: []int64{int64(*largeMiB) << 20}},
		{key: "layers", repo: "library/bench-layers", sizes: sizes},
	} {
		im.tag, im.platform = "1", Platform{"amd64", "linux"}
		out[im.key] = s.mustPush(ctx, im)
	}
	printJSON(out)
}

// seedWAN pushes the wan measurement's images and returns their
// description, keyed blob, layers and index.
func (s *seeder) seedWAN(ctx context.Context, blobMiB, layers, layerMiB, indexLayers int) map[string]any {
	amd64 := Platform{"amd64", "linux"}
	repeat := func(n int) []int64 {
		var sizes []int64
		for range n {
			sizes = append(sizes, int64(layerMiB)<<20)
		}
		return sizes
	}
	out := map[string]any{
		"blob": s.mustPush(ctx, imageSpec{key: "wan-blob", repo: "library/wan-blob", tag: "1", tar: true,
			sizes: []int64{int64(blobMiB) << 20}, platform: amd64}),
		"layers": s.mustPush(ctx, imageSpec{key: "wan-layers", repo: "library/wan-layers", tag: "1", tar: true,
			sizes: repeat(layers), platform: amd64}),
	}
	idx := &Index{Repo: "library/wan-multi", Tag: "1"}
	var children []Descriptor
	for _, p := range []Platform{amd64, {"arm64", "linux"}} {
		img := s.mustPush(ctx, imageSpec{key: "wan-multi-" + p.Architecture, repo: idx.Repo, tar: true,
			sizes: repeat(indexLayers), platform: p})
		img.Manifest.Platform = &p
		idx.Images = append(idx.Images, img)
		idx.Bytes += img.Bytes
		children = append(children, img.Manifest)
	}
	b, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtIndex, "manifests": children})
	if err != nil {
		fail(err)
	}
	idx.Manifest = Descriptor{MediaType: mtIndex, Digest: digestOf(b), Size: int64(len(b))}
	if err := s.putManifest(ctx, idx.Repo, idx.Tag, mtIndex, b); err != nil {
		fail(fmt.Errorf("%s: put index: %w", idx.Repo, err))
	}
	fmt.Fprintf(os.Stderr, "seed: %s:1 %s (an index of %d images, %d bytes)\n", idx.Repo, idx.Manifest.Digest, len(children), idx.Bytes)
	out["index"] = idx
	return out
}

// mustPush pushes one image, says so on stderr, and ends the program when
// that fails.
func (s *seeder) mustPush(ctx context.Context, im imageSpec) *Image {
	t0 := time.Now()
	img, err := s.pushImage(ctx, im)
	if err != nil {
		fail(fmt.Errorf("%s: %w", im.repo, err))
	}
	ref := im.repo + "@" + img.Manifest.Digest
	if im.tag != "" {
		ref = im.repo + ":" + im.tag + " " + img.Manifest.Digest
	}
	fmt.Fprintf(os.Stderr, "seed: %s (%s/%s, %d layers, %d bytes) in %.1fs\n",
		ref, im.platform.OS, im.platform.Architecture, len(img.Layers), img.Bytes, time.Since(t0).Seconds())
	return img
}

func printJSON(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
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

// pushImage writes and pushes each layer, then the config and the manifest
// (by tag, or by digest when im has no tag).
func (s *seeder) pushImage(ctx context.Context, im imageSpec) (*Image, error) {
	img := &Image{Repo: im.repo, Tag: im.tag}
	layerType := mtLayer
	if im.tar {
		layerType = mtTarLayer
	}
	var diffIDs []string
	for i, size := range im.sizes {
		var seed [32]byte
		copy(seed[:], fmt.Sprintf("entrepot-bench/%s/%d", im.key, i))
		rng := rand.NewChaCha8(seed)
		fill := func(w io.Writer) error {
			_, err := io.CopyBuffer(w, io.LimitReader(rng, size), make([]byte, 1<<20))
			return err
		}
		if im.tar {
			fill = func(w io.Writer) error { return writeTar(w, rng, size) }
		}
		d, err := s.writeLayer(fill)
		if err != nil {
			return nil, err
		}
		if err := s.pushBlob(ctx, im.repo, d, filepath.Join(s.dir, d[len("sha256:"):])); err != nil {
			return nil, err
		}
		img.Layers = append(img.Layers, Descriptor{MediaType: layerType, Digest: d, Size: size})
		img.Bytes += size
		// A tar layer's diff ID is its digest (it is not compressed).
		// The random bytes are not a real tar.gz; their diff ID is a
		// stand-in that no client under test checks.
		diffIDs = append(diffIDs, d)
	}
	config, err := json.Marshal(map[string]any{
		"architecture": im.platform.Architecture,
		"os":           im.platform.OS,
		"created":      "2024-05-22T00:00:00Z",
		"config":       map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		return nil, err
	}
	img.Config = Descriptor{MediaType: mtConfig, Digest: digestOf(config), Size: int64(len(config))}
	img.Bytes += img.Config.Size
	if err := s.pushBytes(ctx, im.repo, img.Config.Digest, config); err != nil {
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
	ref := im.tag
	if ref == "" {
		ref = img.Manifest.Digest
	}
	if err := s.putManifest(ctx, im.repo, ref, mtManifest, manifest); err != nil {
		return nil, fmt.Errorf("put manifest: %w", err)
	}
	return img, nil
}

func (s *seeder) putManifest(ctx context.Context, repo, ref, mediaType string, b []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mediaType)
	return s.expect(req, http.StatusCreated)
}

// writeTar writes a tar archive of exactly size bytes (a multiple of 512,
// at least 2048): one regular file of random bytes from rng, its header
// and the two zero blocks that end an archive.
func writeTar(w io.Writer, rng io.Reader, size int64) error {
	const overhead = 512 + 1024
	if size%512 != 0 || size < overhead+512 {
		return fmt.Errorf("a tar layer of %d bytes: want a multiple of 512, at least %d", size, overhead+512)
	}
	tw := tar.NewWriter(w)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg, Name: "blob", Mode: 0o644, Size: size - overhead,
		ModTime: time.Date(2024, 5, 22, 0, 0, 0, 0, time.UTC), Format: tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyBuffer(tw, io.LimitReader(rng, hdr.Size), make([]byte, 1<<20)); err != nil {
		return err
	}
	return tw.Close()
}

// writeLayer writes what fill writes to the blob directory, named by its
// digest, and returns the digest.
func (s *seeder) writeLayer(fill func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(s.dir, ".layer-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	h := sha256.New()
	if err := fill(io.MultiWriter(f, h)); err != nil {
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
