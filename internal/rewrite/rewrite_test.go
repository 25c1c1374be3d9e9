package rewrite

import (
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/oci"
)

const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func testRewriter(t testing.TB, cache string, exclude ...string) *Rewriter {
	t.Helper()
	r, err := New(cache, []Upstream{
		{Name: "docker.io", Host: "registry-1.docker.io"},
		{Name: "ghcr.io", Host: "ghcr.io"},
		{Name: "private", Host: "registry.example.com:5443"},
		{Name: "registry.k8s.io", Host: "registry.k8s.io"},
	}, exclude)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestImage(t *testing.T) {
	r := testRewriter(t, "cache.internal:5000", "docker.io/library/busybox*")
	for _, tc := range []struct{ in, want string }{
		{"nginx:1.27", "cache.internal:5000/docker.io/library/nginx:1.27"},
		{"nginx", "cache.internal:5000/docker.io/library/nginx"},
		{"library/nginx:1.27", "cache.internal:5000/docker.io/library/nginx:1.27"},
		{"docker.io/bitnami/redis:7", "cache.internal:5000/docker.io/bitnami/redis:7"},
		{"index.docker.io/library/nginx:1.27", "cache.internal:5000/docker.io/library/nginx:1.27"},
		{"registry-1.docker.io/library/nginx", "cache.internal:5000/docker.io/library/nginx"},
		{"ghcr.io/org/app@" + dgst, "cache.internal:5000/ghcr.io/org/app@" + dgst},
		{"ghcr.io/org/app:v1@" + dgst, "cache.internal:5000/ghcr.io/org/app:v1@" + dgst},
		{"registry.k8s.io/pause:3.10", "cache.internal:5000/registry.k8s.io/pause:3.10"},
		// A private upstream, by its URL's host and port: served under its name.
		{"registry.example.com:5443/team/api:2.1", "cache.internal:5000/private/team/api:2.1"},
		// Already on the cache: unchanged, so that a second pass changes nothing.
		{"cache.internal:5000/docker.io/library/nginx:1.27", ""},
		{"cache.internal:5000/private/team/api:2.1", ""},
		// Not an upstream's registry, the same host on another port, invalid, excluded.
		{"quay.io/prometheus/prometheus:v3", ""},
		{"registry.example.com/team/api:2.1", ""},
		{"Nginx:1.27", ""},
		{"nginx:1.27@sha256:short", ""},
		{"", ""},
		{"busybox:1.36", ""},
		{"docker.io/library/busybox", ""},
	} {
		got, changed := r.Image(tc.in)
		want := tc.want
		if want == "" {
			want = tc.in
		}
		if got != want || changed != (tc.want != "") {
			t.Errorf("Image(%q) = %q, %v; want %q, %v", tc.in, got, changed, want, tc.want != "")
		}
		if again, changed := r.Image(got); changed {
			t.Errorf("Image(%q) rewrote the rewritten reference again: %q", got, again)
		}
	}
}

func TestImageCachePath(t *testing.T) {
	r := testRewriter(t, "cache.internal/mirror/")
	got, _ := r.Image("nginx:1.27")
	if want := "cache.internal/mirror/docker.io/library/nginx:1.27"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// The inverse the server uses finds the upstream's reference again.
	ref, ok := oci.FromCache("cache.internal/mirror", got)
	if !ok || ref.String() != "docker.io/library/nginx:1.27" {
		t.Fatalf("FromCache(%q) = %v, %v", got, ref, ok)
	}
}

func TestNewRefuses(t *testing.T) {
	ups := []Upstream{{Name: "docker.io", Host: "registry-1.docker.io"}}
	for _, tc := range []struct{ cache, exclude, want string }{
		{"", "", "empty"},
		{"https://cache.internal", "", "without a scheme"},
		{"entrepot", "", "not a registry host"},
		{"cache.internal/Mirror", "", "not a valid repository path"},
		{"cache.internal", "nginx*", "must start with a registry"},
	} {
		var ex []string
		if tc.exclude != "" {
			ex = []string{tc.exclude}
		}
		_, err := New(tc.cache, ups, ex)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, exclude %q): %v, want an error with %q", tc.cache, tc.exclude, err, tc.want)
		}
	}
	for _, ok := range []string{"entrepot:5000", "localhost", "cache.internal", "10.0.0.5:5000/a/b"} {
		if _, err := New(ok, ups, nil); err != nil {
			t.Errorf("New(%q): %v", ok, err)
		}
	}
}

func FuzzImage(f *testing.F) {
	for _, s := range []string{"nginx:1.27", "ghcr.io/org/app@" + dgst, "registry.example.com:5443/a/b:c", "cache.internal:5000/docker.io/x", "a:b:c@d", "localhost:1/x"} {
		f.Add(s)
	}
	r := testRewriter(f, "cache.internal:5000")
	f.Fuzz(func(t *testing.T, image string) {
		got, changed := r.Image(image)
		if !changed {
			if got != image {
				t.Fatalf("unchanged but %q became %q", image, got)
			}
			return
		}
		if !strings.HasPrefix(got, "cache.internal:5000/") {
			t.Fatalf("%q became %q, not on the cache", image, got)
		}
		if _, again := r.Image(got); again {
			t.Fatalf("%q: its rewrite %q is rewritten again", image, got)
		}
		// The rewrite is a valid reference whose tag and digest are the
		// original's.
		in, err := oci.ParseReference(image)
		if err != nil {
			t.Fatalf("%q was rewritten but does not parse: %v", image, err)
		}
		out, err := oci.ParseReference(got)
		if err != nil {
			t.Fatalf("%q became %q, which does not parse: %v", image, got, err)
		}
		if out.Tag != in.Tag || out.Digest != in.Digest || !strings.HasSuffix(out.Repository, in.Repository) {
			t.Fatalf("%q became %q: tag, digest or repository changed", image, got)
		}
	})
}
