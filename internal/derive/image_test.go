package derive

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestImageConfig checks that each kind of change shows in the config,
// and that what a spec does not mention stays the base's.
func TestImageConfig(t *testing.T) {
	base := dockerBase(t)
	tests := []struct {
		name  string
		spec  Spec
		check func(t *testing.T, c v1.Config)
	}{{
		name: "env replaced in place, new keys appended sorted",
		spec: Spec{Env: map[string]string{"VAULT_LOG_LEVEL": "info", "ZED": "z", "ALPHA": "a"}},
		check: func(t *testing.T, c v1.Config) {
			want := []string{"PATH=/usr/bin", "VAULT_LOG_LEVEL=info", "HOME=/root", "ALPHA=a", "ZED=z"}
			if !slices.Equal(c.Env, want) {
				t.Errorf("Env = %q; want %q", c.Env, want)
			}
		},
	}, {
		name: "labels merged",
		spec: Spec{Labels: map[string]string{"team": "platform", "new": "1"}},
		check: func(t *testing.T, c v1.Config) {
			want := map[string]string{"base": "yes", "team": "platform", "new": "1"}
			if fmt.Sprint(c.Labels) != fmt.Sprint(want) {
				t.Errorf("Labels = %v; want %v", c.Labels, want)
			}
		},
	}, {
		name: "volumes and exposed ports, a bare port is tcp",
		spec: Spec{Volumes: []string{"/etc/vault"}, Expose: []string{"8200/tcp", "8201", "53/udp"}},
		check: func(t *testing.T, c v1.Config) {
			if _, ok := c.Volumes["/etc/vault"]; !ok || len(c.Volumes) != 1 {
				t.Errorf("Volumes = %v", c.Volumes)
			}
			if got := slices.Sorted(maps.Keys(c.ExposedPorts)); !slices.Equal(got, []string{"53/udp", "8200/tcp", "8201/tcp"}) {
				t.Errorf("ExposedPorts = %v", got)
			}
		},
	}, {
		name: "user and workdir",
		spec: Spec{User: "100:1000", Workdir: "/vault"},
		check: func(t *testing.T, c v1.Config) {
			if c.User != "100:1000" || c.WorkingDir != "/vault" {
				t.Errorf("User, WorkingDir = %q, %q", c.User, c.WorkingDir)
			}
		},
	}, {
		name: "entrypoint alone clears cmd, as Docker does",
		spec: Spec{Entrypoint: []string{"docker-entrypoint.sh"}},
		check: func(t *testing.T, c v1.Config) {
			if !slices.Equal(c.Entrypoint, []string{"docker-entrypoint.sh"}) || c.Cmd != nil {
				t.Errorf("Entrypoint, Cmd = %q, %q; want [docker-entrypoint.sh], none", c.Entrypoint, c.Cmd)
			}
		},
	}, {
		name: "entrypoint and cmd",
		spec: Spec{Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"server"}},
		check: func(t *testing.T, c v1.Config) {
			if !slices.Equal(c.Entrypoint, []string{"docker-entrypoint.sh"}) || !slices.Equal(c.Cmd, []string{"server"}) {
				t.Errorf("Entrypoint, Cmd = %q, %q", c.Entrypoint, c.Cmd)
			}
		},
	}, {
		name: "cmd alone keeps the entrypoint",
		spec: Spec{Cmd: []string{"server"}},
		check: func(t *testing.T, c v1.Config) {
			if !slices.Equal(c.Entrypoint, []string{"/bin/base"}) || !slices.Equal(c.Cmd, []string{"server"}) {
				t.Errorf("Entrypoint, Cmd = %q, %q", c.Entrypoint, c.Cmd)
			}
		},
	}, {
		name: "an empty entrypoint list clears it",
		spec: Spec{Entrypoint: []string{}},
		check: func(t *testing.T, c v1.Config) {
			if len(c.Entrypoint) != 0 || len(c.Cmd) != 0 {
				t.Errorf("Entrypoint, Cmd = %q, %q; want none", c.Entrypoint, c.Cmd)
			}
		},
	}, {
		name: "nothing changed",
		spec: Spec{Annotations: map[string]string{"a": "b"}},
		check: func(t *testing.T, c v1.Config) {
			want := baseConfig("", "", "").Config
			if fmt.Sprint(c) != fmt.Sprint(want) {
				t.Errorf("config = %+v; want the base's %+v", c, want)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name, tt.spec.From = "vault", "docker.io/hashicorp/vault:1.14"
			img, err := Image(base, tt.spec, v1.Hash{})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, mustConfig(t, img).Config)
		})
	}
}

// vaultSpec is the brief's example, with a source file in dir.
func vaultSpec(t *testing.T, dir string) Spec {
	t.Helper()
	src := filepath.Join(dir, "extra.pem")
	if err := os.WriteFile(src, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return Spec{
		Name: "vault", From: "docker.io/hashicorp/vault:1.14",
		Env:    map[string]string{"VAULT_LOG_LEVEL": "info"},
		Labels: map[string]string{"team": "platform"},
		Files: []File{
			{Path: "/usr/local/bin/v", Symlink: "/bin/vault"},
			{Path: "/etc/vault/config.hcl", Content: ptr("ui = true\n"), Mode: "0644", UID: 100, GID: 1000},
			{Path: "/etc/vault", Dir: true, Mode: "0777"},
			{Path: "/etc/ssl/extra.pem", Source: src},
			{Path: "/etc/empty", Content: ptr("")},
		},
	}
}

// TestLayerTar lists the extra layer as a client unpacks it: sorted
// entries, each with its type, mode, owner, content or link target, the
// fixed mtime, no owner names, and no parent directory not declared.
func TestLayerTar(t *testing.T) {
	img, err := Image(dockerBase(t), vaultSpec(t, t.TempDir()), v1.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		name     string
		typ      byte
		mode     int64
		uid, gid int
		body     string
		link     string
	}
	want := []entry{
		{"etc/empty", tar.TypeReg, 0o644, 0, 0, "", ""},
		{"etc/ssl/extra.pem", tar.TypeReg, 0o644, 0, 0, "-----BEGIN CERTIFICATE-----\n", ""},
		{"etc/vault/", tar.TypeDir, 0o777, 0, 0, "", ""},
		{"etc/vault/config.hcl", tar.TypeReg, 0o644, 100, 1000, "ui = true\n", ""},
		{"usr/local/bin/v", tar.TypeSymlink, 0o777, 0, 0, "", "/bin/vault"},
	}
	var got []entry
	for _, e := range listLayer(t, lastLayer(t, img)) {
		h := e.hdr
		got = append(got, entry{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, e.body, h.Linkname})
		if !h.ModTime.Equal(LayerTime) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v, uname %q, gname %q; want %v and no names", h.Name, h.ModTime, h.Uname, h.Gname, LayerTime)
		}
		if h.Format != tar.FormatUSTAR {
			t.Errorf("%s: format %v; want USTAR, as nothing here needs PAX", h.Name, h.Format)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("layer entries:\n got %v\nwant %v", got, want)
	}
}

// TestLayerNeedsPAX checks that what USTAR cannot hold (a long name, a
// large uid) is still written exactly, through PAX.
func TestLayerNeedsPAX(t *testing.T) {
	long := "/" + strings.Repeat("d", 120) + "/" + strings.Repeat("f", 120)
	s := Spec{Name: "pax", From: "busybox", Files: []File{{Path: long, Content: ptr("x"), UID: 1 << 22}}}
	img, err := Image(dockerBase(t), s, v1.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	entries := listLayer(t, lastLayer(t, img))
	if len(entries) != 1 {
		t.Fatalf("%d entries; want 1", len(entries))
	}
	if h := entries[0].hdr; h.Name != long[1:] || h.Uid != 1<<22 || h.Format != tar.FormatPAX {
		t.Errorf("entry %q uid %d format %v; want the long name, uid %d, PAX", h.Name, h.Uid, h.Format, 1<<22)
	}
}

// TestReproducible builds the same spec twice, and again with the files
// listed in another order and the source file given another host mode:
// the bytes, and so every digest, must not change.
func TestReproducible(t *testing.T) {
	base, dir := dockerBase(t), t.TempDir()
	s := vaultSpec(t, dir)
	first, err := Image(base, s, v1.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(s.Files)
	if err := os.Chmod(filepath.Join(dir, "extra.pem"), 0o755); err != nil {
		t.Fatal(err)
	}
	second, err := Image(base, s, v1.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustDigest(t, first), mustDigest(t, second); a != b {
		t.Errorf("image digests differ: %s, %s", a, b)
	}
	if a, b := mustDigest(t, lastLayer(t, first)), mustDigest(t, lastLayer(t, second)); a != b {
		t.Errorf("layer digests differ: %s, %s", a, b)
	}
}

// TestDiffIDs checks the config's rootfs against the layers: one diff_id
// per layer, the extra one the sha256 of the uncompressed tar, and the
// layer's digest the sha256 of the blob served.
func TestDiffIDs(t *testing.T) {
	base := dockerBase(t)
	img, err := Image(base, vaultSpec(t, t.TempDir()), v1.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	diffIDs := mustConfig(t, img).RootFS.DiffIDs
	if len(diffIDs) != 3 || len(layers) != 3 {
		t.Fatalf("%d diff_ids, %d layers; want 3 of each", len(diffIDs), len(layers))
	}
	for i, l := range layers {
		if d, _ := l.DiffID(); d != diffIDs[i] {
			t.Errorf("layer %d: diff_id %s; config says %s", i, d, diffIDs[i])
		}
	}
	extra := layers[2]
	if got, want := diffIDs[2], sha256Of(t, extra.Uncompressed); got != want {
		t.Errorf("extra diff_id %s; sha256 of the tar is %s", got, want)
	}
	if got, want := mustDigest(t, extra), sha256Of(t, extra.Compressed); got != want {
		t.Errorf("extra digest %s; sha256 of the blob is %s", got, want)
	}
	m := mustManifest(t, img)
	if d := m.Layers[2]; d.Digest != mustDigest(t, extra) {
		t.Errorf("manifest lists %s; the layer is %s", d.Digest, mustDigest(t, extra))
	}
	for i, d := range mustManifest(t, base).Layers {
		if m.Layers[i].Digest != d.Digest {
			t.Errorf("base layer %d changed: %s; was %s", i, m.Layers[i].Digest, d.Digest)
		}
	}
}

func sha256Of(t *testing.T, open func() (io.ReadCloser, error)) v1.Hash {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

// TestHistory checks that history stays consistent with the layers: one
// non-empty entry per layer, plus one empty entry when the config changes.
func TestHistory(t *testing.T) {
	tests := []struct {
		name             string
		spec             Spec
		layers, empties  int
		lastCreatedByHas string
	}{
		{"config only", Spec{Env: map[string]string{"A": "1"}, User: "app"}, 2, 1, "env, user"},
		{"files only", Spec{Files: []File{{Path: "/a", Content: ptr("a")}}}, 3, 0, "files /a"},
		{"both", Spec{Cmd: []string{"x"}, Files: []File{{Path: "/a", Dir: true}}}, 3, 1, "files /a"},
		{"neither", Spec{Annotations: map[string]string{"a": "b"}}, 2, 0, "random"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name, tt.spec.From = "app", "busybox"
			img, err := Image(dockerBase(t), tt.spec, v1.Hash{})
			if err != nil {
				t.Fatal(err)
			}
			layers, _ := img.Layers()
			hist := mustConfig(t, img).History
			empties := 0
			for _, h := range hist {
				if h.EmptyLayer {
					empties++
				}
			}
			if len(layers) != tt.layers || empties != tt.empties || len(hist) != len(layers)+empties {
				t.Errorf("%d layers, %d history entries of which %d empty; want %d layers, %d empty",
					len(layers), len(hist), empties, tt.layers, tt.empties)
			}
			if last := hist[len(hist)-1]; !strings.Contains(last.CreatedBy, tt.lastCreatedByHas) {
				t.Errorf("last history entry %q; want it to mention %q", last.CreatedBy, tt.lastCreatedByHas)
			}
		})
	}
}

// TestMediaTypes checks that the derived image follows its base: Docker
// stays Docker, OCI stays OCI, down to the extra layer.
func TestMediaTypes(t *testing.T) {
	tests := []struct {
		name                  string
		base                  v1.Image
		manifest, config, lay types.MediaType
	}{
		{"docker", dockerBase(t), types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer},
		{"oci", ociBase(t, "linux", "amd64", ""), types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Spec{Name: "m", From: "busybox", Files: []File{{Path: "/a", Content: ptr("a")}}}
			img, err := Image(tt.base, s, v1.Hash{})
			if err != nil {
				t.Fatal(err)
			}
			m := mustManifest(t, img)
			if mt, _ := img.MediaType(); mt != tt.manifest || m.MediaType != tt.manifest {
				t.Errorf("manifest media type %s (field %s); want %s", mt, m.MediaType, tt.manifest)
			}
			if m.Config.MediaType != tt.config {
				t.Errorf("config media type %s; want %s", m.Config.MediaType, tt.config)
			}
			if got := m.Layers[len(m.Layers)-1].MediaType; got != tt.lay {
				t.Errorf("extra layer media type %s; want %s", got, tt.lay)
			}
		})
	}
}

// TestAnnotations checks the manifest's annotations: the spec's own and
// the base's digest and full name.
func TestAnnotations(t *testing.T) {
	base := dockerBase(t)
	s := Spec{Name: "a", From: "hashicorp/vault:1.14", Annotations: map[string]string{"org.example/x": "y"}}
	img, err := Image(base, s, v1.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"org.example/x":                        "y",
		"org.opencontainers.image.base.digest": mustDigest(t, base).String(),
		"org.opencontainers.image.base.name":   "docker.io/hashicorp/vault:1.14",
	}
	if got := mustManifest(t, img).Annotations; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("annotations = %v; want %v", got, want)
	}
	given := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	img, err = Image(base, s, given)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustManifest(t, img).Annotations["org.opencontainers.image.base.digest"]; got != given.String() {
		t.Errorf("base.digest = %s; want the given %s", got, given)
	}
}

// TestSourceUnreadable checks that a source file that cannot be read fails
// the build with an error naming it.
func TestSourceUnreadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pem")
	s := Spec{Name: "s", From: "busybox", Files: []File{{Path: "/etc/x.pem", Source: missing}}}
	_, err := Image(dockerBase(t), s, v1.Hash{})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "/etc/x.pem") {
		t.Errorf("err = %v; want one naming %s and /etc/x.pem", err, missing)
	}
}

// TestImageRefusesInvalidSpec checks that Image validates before building.
func TestImageRefusesInvalidSpec(t *testing.T) {
	_, err := Image(dockerBase(t), Spec{Name: "x", From: "busybox", Workdir: "relative"}, v1.Hash{})
	if err == nil || !strings.Contains(err.Error(), "derive[x].workdir") {
		t.Errorf("err = %v; want a workdir error", err)
	}
}
