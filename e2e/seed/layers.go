package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// created is the fixed creation time written into every config and history
// entry, so that the same seed always gives the same digests.
var created = v1.Time{Time: time.Date(2024, 5, 22, 0, 0, 0, 0, time.UTC)}

// mediaTypes picks the Docker schema 2 or the OCI family of media types, so
// the suite covers both.
type mediaTypes struct {
	manifest, config, layer types.MediaType
}

var (
	dockerTypes = mediaTypes{types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer}
	ociTypes    = mediaTypes{types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer}
)

// file is one regular file of a layer's tar.
type file struct {
	name string
	size int
}

// newRand returns a deterministic source named by seed: every run of the seed
// program pushes byte-identical images, which makes failures reproducible.
func newRand(seed string) *rand.ChaCha8 {
	var key [32]byte
	copy(key[:], seed)
	return rand.NewChaCha8(key)
}

// tarGz writes files filled from rng as a gzip-compressed tar. A layer that
// dockerd and containerd can unpack must be a real tar, not just random bytes.
func tarGz(rng io.Reader, level int, files []file) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range files {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.name,
			Mode:     0o644,
			Size:     int64(f.size),
			ModTime:  created.Time,
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.CopyN(tw, rng, int64(f.size)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layer turns a compressed tar into a layer of media type mt. The opener hands
// out the same bytes every time, so digest and diff ID are computed once.
func layer(gz []byte, mt types.MediaType) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	}, tarball.WithMediaType(mt))
}

// smallLayers returns n layers of a few small files each.
func smallLayers(rng io.Reader, prefix string, n int, mt types.MediaType) ([]v1.Layer, error) {
	var layers []v1.Layer
	for i := range n {
		files := []file{
			{name: fmt.Sprintf("%s/layer%d/a.bin", prefix, i), size: 4096 * (i + 1)},
			{name: fmt.Sprintf("%s/layer%d/b.txt", prefix, i), size: 512},
		}
		gz, err := tarGz(rng, gzip.DefaultCompression, files)
		if err != nil {
			return nil, err
		}
		l, err := layer(gz, mt)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return layers, nil
}

// image builds an image for platform os/arch from layers, with a config that
// dockerd and containerd accept (os, architecture, rootfs diff IDs).
func image(mt mediaTypes, platform v1.Platform, layers []v1.Layer) (v1.Image, error) {
	base := mutate.MediaType(empty.Image, mt.manifest)
	base = mutate.ConfigMediaType(base, mt.config)
	base, err := mutate.ConfigFile(base, &v1.ConfigFile{
		Architecture: platform.Architecture,
		OS:           platform.OS,
		Variant:      platform.Variant,
		Created:      created,
		Config: v1.Config{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"/bin/sh"},
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, 0, len(layers))
	for i, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:   l,
			History: v1.History{Created: created, CreatedBy: fmt.Sprintf("entrepot e2e seed layer %d", i)},
		})
	}
	return mutate.Append(base, adds...)
}
