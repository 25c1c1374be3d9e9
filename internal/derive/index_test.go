package derive

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestIndex derives a two-platform index with an attestation, all of it
// or one platform, and checks what it lists, its media type, and each
// image's base annotations.
func TestIndex(t *testing.T) {
	tests := []struct {
		name      string
		mediaType types.MediaType
		platforms []string
		want      []string // platforms of the derived index, in order
	}{
		{"oci, all platforms", types.OCIImageIndex, nil, []string{"linux/amd64", "linux/arm64/v8"}},
		{"docker list, all platforms", types.DockerManifestList, nil, []string{"linux/amd64", "linux/arm64/v8"}},
		{"limited to arm64, variant matched", types.OCIImageIndex, []string{"linux/arm64"}, []string{"linux/arm64/v8"}},
		{"limited to amd64", types.DockerManifestList, []string{"linux/amd64"}, []string{"linux/amd64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := twoPlatformIndex(t, tt.mediaType)
			s := Spec{
				Name: "app", From: "ghcr.io/org/app:1", Platforms: tt.platforms,
				Env:   map[string]string{"A": "1"},
				Files: []File{{Path: "/etc/app.conf", Content: ptr("x=1\n")}},
			}
			idx, err := Index(base, s, v1.Hash{})
			if err != nil {
				t.Fatal(err)
			}
			if mt, _ := idx.MediaType(); mt != tt.mediaType {
				t.Errorf("index media type %s; want the base's %s", mt, tt.mediaType)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if got := im.Annotations["org.opencontainers.image.base.digest"]; got != mustDigest(t, base).String() {
				t.Errorf("index base.digest %s; want %s", got, mustDigest(t, base))
			}
			baseChildren := childrenByPlatform(t, base)
			var got []string
			var extra []v1.Hash
			for _, d := range im.Manifests {
				got = append(got, d.Platform.String())
				img, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				if mustDigest(t, img) != d.Digest {
					t.Errorf("%s: descriptor says %s; the image is %s", d.Platform, d.Digest, mustDigest(t, img))
				}
				if want := baseChildren[d.Platform.String()].String(); mustManifest(t, img).Annotations["org.opencontainers.image.base.digest"] != want {
					t.Errorf("%s: base.digest %s; want the base child %s", d.Platform,
						mustManifest(t, img).Annotations["org.opencontainers.image.base.digest"], want)
				}
				if env := mustConfig(t, img).Config.Env; !slices.Contains(env, "A=1") {
					t.Errorf("%s: env %q lacks A=1", d.Platform, env)
				}
				extra = append(extra, mustDigest(t, lastLayer(t, img)))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("platforms %q; want %q", got, tt.want)
			}
			if len(slices.Compact(slices.Clone(extra))) != 1 {
				t.Errorf("extra layers %v; want one shared by every platform", extra)
			}
			again, err := Index(base, s, v1.Hash{})
			if err != nil {
				t.Fatal(err)
			}
			if mustDigest(t, again) != mustDigest(t, idx) {
				t.Errorf("second build %s; first %s", mustDigest(t, again), mustDigest(t, idx))
			}
		})
	}
}

// childrenByPlatform maps an index's platforms to their manifest digests.
func childrenByPlatform(t *testing.T, idx v1.ImageIndex) map[string]v1.Hash {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]v1.Hash)
	for _, d := range im.Manifests {
		m[d.Platform.String()] = d.Digest
	}
	return m
}

// TestIndexErrors checks the refusals: a platform the base lacks, and a
// base that is not an index.
func TestIndexErrors(t *testing.T) {
	base := twoPlatformIndex(t, types.OCIImageIndex)
	_, err := Index(base, Spec{Name: "app", From: "busybox", Platforms: []string{"linux/amd64", "linux/s390x"}}, v1.Hash{})
	if err == nil || !strings.Contains(err.Error(), "linux/s390x") || strings.Contains(err.Error(), "amd64") {
		t.Errorf("err = %v; want one naming linux/s390x only", err)
	}
	_, err = Image(ociBase(t, "linux", "amd64", ""), Spec{Name: "app", From: "busybox"}, v1.Hash{})
	if err != nil {
		t.Errorf("Image of an OCI image: %v", err)
	}
	_, err = Index(base, Spec{Name: "app", From: "busybox", Platforms: []string{"linux"}}, v1.Hash{})
	if err == nil || !strings.Contains(err.Error(), "derive[app].platforms[0]") {
		t.Errorf("err = %v; want a platforms[0] error", err)
	}
}

// TestIndexFromRegistry derives from an index pulled from a real
// registry, and checks the base's layers are never downloaded (only
// manifests and configs are needed), and that the derived index can be
// pushed and pulled back unchanged. It is pushed to the base's own
// repository, whose blobs the registry already has.
func TestIndexFromRegistry(t *testing.T) {
	var mu sync.Mutex // guards blobGets
	var blobGets []string
	reg := registry.New(registry.Logger(discardLogger()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			mu.Lock()
			blobGets = append(blobGets, r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
			mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	base := twoPlatformIndex(t, types.OCIImageIndex)
	baseRef, err := name.ParseReference(host + "/org/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(baseRef, base); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	blobGets = nil
	mu.Unlock()

	pulled, err := remote.Index(baseRef)
	if err != nil {
		t.Fatal(err)
	}
	s := Spec{Name: "app", From: host + "/org/app:1", User: "app", Files: []File{{Path: "/etc/app", Dir: true}}}
	derived, err := Index(pulled, s, v1.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	derivedRef, err := name.ParseReference(host + "/org/app:1-derived")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(derivedRef, derived); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	gets := slices.Clone(blobGets)
	mu.Unlock()
	if len(gets) == 0 {
		t.Fatal("no blob was read; the configs should have been")
	}
	for _, img := range childImages(t, base) {
		for _, l := range mustManifest(t, img).Layers {
			if slices.Contains(gets, l.Digest.String()) {
				t.Errorf("base layer %s was downloaded; only manifests and configs are needed", l.Digest)
			}
		}
	}
	back, err := remote.Index(derivedRef)
	if err != nil {
		t.Fatal(err)
	}
	if mustDigest(t, back) != mustDigest(t, derived) {
		t.Errorf("pulled back %s; pushed %s", mustDigest(t, back), mustDigest(t, derived))
	}
	if got := mustDigest(t, derived); got == mustDigest(t, base) {
		t.Errorf("derived index is the base")
	}
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// childImages are the images an index lists.
func childImages(t *testing.T, idx v1.ImageIndex) []v1.Image {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var imgs []v1.Image
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	return imgs
}
