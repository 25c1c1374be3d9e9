package derive

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// baseConfig is the config every test base starts from, set so that each
// change a spec makes is visible against it.
func baseConfig(os, arch, variant string) *v1.ConfigFile {
	return &v1.ConfigFile{
		OS: os, Architecture: arch, Variant: variant,
		Created: v1.Time{}, // random.Image leaves it zero; derived history copies it
		Config: v1.Config{
			Env:        []string{"PATH=/usr/bin", "VAULT_LOG_LEVEL=debug", "HOME=/root"},
			Labels:     map[string]string{"base": "yes", "team": "base"},
			Entrypoint: []string{"/bin/base"},
			Cmd:        []string{"serve"},
			User:       "root",
			WorkingDir: "/",
		},
	}
}

// dockerBase is a Docker v2 schema 2 image of two random layers with a
// history that matches them, for linux/amd64.
func dockerBase(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	return withConfig(t, img, baseConfig("linux", "amd64", ""))
}

// ociBase is the same as dockerBase with OCI media types throughout.
func ociBase(t *testing.T, os, arch, variant string) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for range 2 {
		l, err := random.Layer(256, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "random"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return withConfig(t, img, baseConfig(os, arch, variant))
}

// withConfig sets cfg on img, keeping img's diff_ids and history.
func withConfig(t *testing.T, img v1.Image, cfg *v1.ConfigFile) v1.Image {
	t.Helper()
	old, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg.RootFS, cfg.History = old.RootFS, old.History
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// twoPlatformIndex is an index of mt with linux/amd64 and linux/arm64/v8
// images and a BuildKit-style attestation (unknown/unknown).
func twoPlatformIndex(t *testing.T, mt types.MediaType) v1.ImageIndex {
	t.Helper()
	amd := ociBase(t, "linux", "amd64", "")
	arm := ociBase(t, "linux", "arm64", "v8")
	att := ociBase(t, "unknown", "unknown", "")
	if mt == types.DockerManifestList {
		amd = mutate.ConfigMediaType(mutate.MediaType(amd, types.DockerManifestSchema2), types.DockerConfigJSON)
		arm = mutate.ConfigMediaType(mutate.MediaType(arm, types.DockerManifestSchema2), types.DockerConfigJSON)
	}
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}},
	), mt)
}

// tarEntryOf is what a test checks of one entry of a layer.
type tarEntryOf struct {
	hdr  *tar.Header
	body string
}

// listLayer reads a layer's compressed blob as a client would: gunzip,
// then each tar entry in order.
func listLayer(t *testing.T, l v1.Layer) []tarEntryOf {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header has name %q, mtime %v; want neither", zr.Name, zr.ModTime)
	}
	var entries []tarEntryOf
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, tarEntryOf{hdr, string(body)})
	}
}

func ptr[T any](v T) *T { return &v }

// lastLayer is an image's top layer.
func lastLayer(t *testing.T, img v1.Image) v1.Layer {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return layers[len(layers)-1]
}

func mustConfig(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

func mustManifest(t *testing.T, img v1.Image) *v1.Manifest {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustDigest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
