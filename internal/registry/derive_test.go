package registry_test

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/derive"
)

// vaultSpec is the example, with one of each kind of change.
func vaultSpec() derive.Spec {
	content := "listener \"tcp\" {}\n"
	return derive.Spec{
		Name:    "vault",
		From:    "docker.io/hashicorp/vault:1.14",
		Env:     map[string]string{"VAULT_LOG_LEVEL": "info"},
		Labels:  map[string]string{"team": "platform"},
		Volumes: []string{"/etc/vault"},
		Expose:  []string{"8200/tcp"},
		User:    "100:1000",
		Workdir: "/srv",
		Cmd:     []string{"server"},
		Files: []derive.File{
			{Path: "/etc/vault", Dir: true, Mode: "0777"},
			{Path: "/etc/vault/config.hcl", Content: &content, Mode: "0640", UID: 100, GID: 1000},
			{Path: "/usr/local/bin/v", Symlink: "/bin/vault"},
		},
	}
}

// pushBase writes a base image of two random layers to the origin.
func pushBase(t *testing.T, o *origin, ref string, platform v1.Platform) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Config.Env = []string{"PATH=/bin", "VAULT_LOG_LEVEL=debug"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if ref != "" {
		if err := remote.Write(mustRef(t, o.host()+"/"+ref), img); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestDerivedImage: a derived image pulls through the cache with each
// change in place, its digest is the one a second derivation gives
// (reproducible), and the base's layers are the base's.
func TestDerivedImage(t *testing.T) {
	o := newOrigin(t)
	base := pushBase(t, o, "hashicorp/vault:1.14", v1.Platform{OS: "linux", Architecture: "amd64"})
	c := newCache(t, o, options{derive: []derive.Spec{vaultSpec()}})

	img, err := remote.Image(mustRef(t, c.host()+"/derived/vault:1.14"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := derive.Image(base, vaultSpec(), v1.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := digestOf(t, img), digestOf(t, want); got != want {
		t.Fatalf("derived digest %s, a second derivation gives %s", got, want)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cf.Config.Env, "VAULT_LOG_LEVEL=info") || slices.Contains(cf.Config.Env, "VAULT_LOG_LEVEL=debug") {
		t.Errorf("env %v: want VAULT_LOG_LEVEL=info in place of debug", cf.Config.Env)
	}
	if _, ok := cf.Config.Volumes["/etc/vault"]; !ok {
		t.Errorf("volumes %v: want /etc/vault", cf.Config.Volumes)
	}
	if _, ok := cf.Config.ExposedPorts["8200/tcp"]; !ok || cf.Config.User != "100:1000" || cf.Config.WorkingDir != "/srv" ||
		!slices.Equal(cf.Config.Cmd, []string{"server"}) || cf.Config.Labels["team"] != "platform" {
		t.Errorf("config %+v: want port 8200/tcp, user 100:1000, workdir /srv, cmd [server], label team", cf.Config)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	baseLayers, _ := base.Layers()
	if len(layers) != len(baseLayers)+1 {
		t.Fatalf("%d layers, want the base's %d and one more", len(layers), len(baseLayers))
	}
	for i, l := range baseLayers {
		if digestOf(t, l) != digestOf(t, layers[i]) {
			t.Errorf("layer %d is not the base's", i)
		}
		readLayer(t, layers[i])
	}
	entries := tarEntries(t, layers[len(layers)-1])
	if h := entries["etc/vault/"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode&0o7777 != 0o777 {
		t.Errorf("extra layer: /etc/vault is %+v, want a directory of mode 0777", h)
	}
	if h := entries["etc/vault/config.hcl"]; h == nil || h.Mode&0o7777 != 0o640 || h.Uid != 100 || h.Gid != 1000 {
		t.Errorf("extra layer: config.hcl is %+v, want mode 0640, owned 100:1000", h)
	}
	if h := entries["usr/local/bin/v"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/bin/vault" {
		t.Errorf("extra layer: usr/local/bin/v is %+v, want a symlink to /bin/vault", h)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Annotations["org.opencontainers.image.base.digest"]; got != digestOf(t, base) {
		t.Errorf("base.digest annotation %q, want %s", got, digestOf(t, base))
	}
	// Every blob came through the cache verified (remote checks digests);
	// the base's layers came from the origin once each.
	if n := o.count("GET blobs"); n != len(baseLayers)+1 {
		t.Errorf("origin answered %d blob GETs, want the base's config and %d layers", n, len(baseLayers))
	}

	// A second cache derives the same digest: reproducible across hosts.
	c2 := newCache(t, o, options{derive: []derive.Spec{vaultSpec()}})
	again, err := remote.Head(mustRef(t, c2.host()+"/derived/vault:1.14"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest.String() != digestOf(t, img) {
		t.Errorf("second cache derived %s, the first %s", again.Digest, digestOf(t, img))
	}
}

// readLayer pulls a layer whole; remote's reader checks its digest.
func readLayer(t *testing.T, l v1.Layer) {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
}

// tarEntries lists a layer's tar headers by name.
func tarEntries(t *testing.T, l v1.Layer) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

// TestDerivedIndex: an index base gives a derived index of every
// platform, or of those the spec names, with Docker media types kept.
func TestDerivedIndex(t *testing.T) {
	o := newOrigin(t)
	amd := pushBase(t, o, "", v1.Platform{OS: "linux", Architecture: "amd64"})
	arm := pushBase(t, o, "", v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	), types.DockerManifestList)
	if err := remote.WriteIndex(mustRef(t, o.host()+"/hashicorp/vault:1.14"), idx); err != nil {
		t.Fatal(err)
	}
	arm64 := vaultSpec()
	arm64.Name, arm64.Tag, arm64.Platforms = "vault-arm", "arm", []string{"linux/arm64"}
	c := newCache(t, o, options{derive: []derive.Spec{vaultSpec(), arm64}})

	for _, tc := range []struct {
		name string
		spec derive.Spec
		ref  string
		want int
	}{
		{"all", vaultSpec(), "/derived/vault:1.14", 2},
		{"arm64 only", arm64, "/derived/vault-arm:arm", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := remote.Index(mustRef(t, c.host()+tc.ref))
			if err != nil {
				t.Fatal(err)
			}
			want, err := derive.Index(idx, tc.spec, v1.Hash{})
			if err != nil {
				t.Fatal(err)
			}
			if digestOf(t, got) != digestOf(t, want) {
				t.Fatalf("derived index %s, a second derivation gives %s", digestOf(t, got), digestOf(t, want))
			}
			if mt, _ := got.MediaType(); mt != types.DockerManifestList {
				t.Errorf("media type %s, want the base's %s", mt, types.DockerManifestList)
			}
			im, err := got.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(im.Manifests) != tc.want {
				t.Fatalf("%d platforms, want %d", len(im.Manifests), tc.want)
			}
			for _, desc := range im.Manifests {
				img, err := remote.Image(mustRef(t, c.host()+"/derived/"+tc.spec.Name+"@"+desc.Digest.String()))
				if err != nil {
					t.Fatal(err)
				}
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.Architecture != desc.Platform.Architecture || !slices.Contains(cf.Config.Env, "VAULT_LOG_LEVEL=info") {
					t.Errorf("%s: config %s with env %v, want its platform's and the change", desc.Digest, cf.Architecture, cf.Config.Env)
				}
				ls, _ := img.Layers()
				for _, l := range ls {
					readLayer(t, l)
				}
			}
		})
	}
}

// TestDerivedFollowsBase: when the base tag moves, the derived tag
// follows on its revalidation, and the previous derived digest still
// pulls.
func TestDerivedFollowsBase(t *testing.T) {
	o := newOrigin(t)
	pushBase(t, o, "hashicorp/vault:1.14", v1.Platform{OS: "linux", Architecture: "amd64"})
	c := newCache(t, o, options{derive: []derive.Spec{vaultSpec()}}) // ttl 0: revalidated on every pull

	ref := mustRef(t, c.host()+"/derived/vault:1.14")
	first, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	oldDigest := digestOf(t, first)
	moved := pushBase(t, o, "hashicorp/vault:1.14", v1.Platform{OS: "linux", Architecture: "amd64"})

	second, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	want, err := derive.Image(moved, vaultSpec(), v1.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, second) != digestOf(t, want) || digestOf(t, second) == oldDigest {
		t.Fatalf("after the base moved, derived tag is %s, want %s (the old was %s)", digestOf(t, second), digestOf(t, want), oldDigest)
	}
	old, err := remote.Image(mustRef(t, c.host()+"/derived/vault@"+oldDigest))
	if err != nil {
		t.Fatalf("the previous derived digest no longer pulls: %v", err)
	}
	if _, err := old.ConfigFile(); err != nil {
		t.Fatal(err)
	}
}

// TestDerivedRefusals: what derived/ does not have is a 404 with the OCI
// code of its kind, and a push is refused.
func TestDerivedRefusals(t *testing.T) {
	o := newOrigin(t)
	pushBase(t, o, "hashicorp/vault:1.14", v1.Platform{OS: "linux", Architecture: "amd64"})
	other := pushBase(t, o, "hashicorp/other:1", v1.Platform{OS: "linux", Architecture: "amd64"})
	otherLayers, _ := other.Layers()
	c := newCache(t, o, options{derive: []derive.Spec{vaultSpec()}})

	for _, tc := range []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"unknown name", "GET", "/v2/derived/nope/manifests/1.14", 404, "MANIFEST_UNKNOWN"},
		{"other tag", "GET", "/v2/derived/vault/manifests/latest", 404, "MANIFEST_UNKNOWN"},
		{"unknown digest", "GET", "/v2/derived/vault/manifests/sha256:" + strings.Repeat("0", 64), 404, "MANIFEST_UNKNOWN"},
		{"blob of another image", "GET", "/v2/derived/vault/blobs/" + digestOf(t, otherLayers[0]), 404, "BLOB_UNKNOWN"},
		{"push", "PUT", "/v2/derived/vault/manifests/1.14", 405, "UNSUPPORTED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.do(t, tc.method, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.status)
			}
			var e struct {
				Errors []struct{ Code string } `json:"errors"`
			}
			if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 || e.Errors[0].Code != tc.code {
				t.Errorf("body %s, want code %s", body, tc.code)
			}
		})
	}
	resp, body := c.do(t, "GET", "/v2/derived/vault/tags/list")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"1.14"`) {
		t.Errorf("tags/list: %d %s, want the one tag 1.14", resp.StatusCode, body)
	}
}

// A derived image's large base layer is fetched in parts from the base's
// upstream, as the base's own pulls are; the layer this source made comes
// from memory.
func TestDerivedParallel(t *testing.T) {
	o := newOrigin(t)
	img := push(t, o, "hashicorp/vault:1.14", 3<<20, 1)
	layers, _ := img.Layers()
	d := digestOf(t, layers[0])
	rs := recordRanges(o, nil)
	c := newCache(t, o, options{derive: []derive.Spec{vaultSpec()},
		parallel: map[string]cache.Parallel{"derived": parallelOpts["docker.io"]}})

	derived, err := remote.Image(mustRef(t, c.host()+"/derived/vault:1.14"))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := derived.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		readLayer(t, l)
	}
	size, err := layers[0].Size()
	if err != nil {
		t.Fatal(err)
	}
	asked := rs.of(d)
	if parts := partsAfterHead(int(size)); len(asked) != 1+parts || asked[0] != "" {
		t.Fatalf("base layer: ranges asked %q; want the whole blob, then %d parts after its first", asked, parts)
	}
	checkCover(t, append([]string{"bytes=0-262143"}, asked[1:]...), size)
}
