package oci

import (
	"strings"
	"testing"
)

const sha = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestParseReference(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nginx", "docker.io/library/nginx"},
		{"nginx:1.27", "docker.io/library/nginx:1.27"},
		{"library/nginx:1.27", "docker.io/library/nginx:1.27"},
		{"docker.io/nginx:1.27", "docker.io/library/nginx:1.27"},
		{"docker.io/library/nginx:1.27", "docker.io/library/nginx:1.27"},
		{"index.docker.io/library/nginx", "docker.io/library/nginx"},
		{"registry-1.docker.io/bitnami/redis:7", "docker.io/bitnami/redis:7"},
		{"bitnami/redis", "docker.io/bitnami/redis"},
		{"ghcr.io/org/app@" + sha, "ghcr.io/org/app@" + sha},
		{"ghcr.io/org/app:1.2@" + sha, "ghcr.io/org/app:1.2@" + sha},
		{"localhost:5000/team/app:dev", "localhost:5000/team/app:dev"},
		{"localhost/app", "localhost/app"},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"},
		{"quay.io/prometheus/node-exporter:v1.8.2", "quay.io/prometheus/node-exporter:v1.8.2"},
		// A name whose first part is no host stays on Docker Hub.
		{"myorg/app:1", "docker.io/myorg/app:1"},
	} {
		r, err := ParseReference(tc.in)
		if err != nil {
			t.Errorf("ParseReference(%q): %v", tc.in, err)
			continue
		}
		if got := r.String(); got != tc.want {
			t.Errorf("ParseReference(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{
		"", "Nginx", "nginx:", "nginx@sha256:abc", "ghcr.io/", "nginx:-bad", "a//b", "/nginx",
		"nginx:" + strings.Repeat("a", 129), strings.Repeat("a/", 3000),
	} {
		if r, err := ParseReference(bad); err == nil {
			t.Errorf("ParseReference(%q) = %+v, want an error", bad, r)
		}
	}
}

func TestOnCache(t *testing.T) {
	for _, tc := range []struct{ cache, in, want string }{
		{"cache.internal:5000", "nginx:1.27", "cache.internal:5000/docker.io/library/nginx:1.27"},
		{"cache.internal:5000/", "ghcr.io/org/app@" + sha, "cache.internal:5000/ghcr.io/org/app@" + sha},
		{"cache.internal/mirror", "nginx", "cache.internal/mirror/docker.io/library/nginx"},
	} {
		r, err := ParseReference(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		got := r.OnCache(tc.cache)
		if got != tc.want {
			t.Errorf("OnCache(%q) of %q = %q, want %q", tc.cache, tc.in, got, tc.want)
		}
		back, ok := FromCache(tc.cache, got)
		if !ok || back != r {
			t.Errorf("FromCache(%q, %q) = %+v, %v; want %+v", tc.cache, got, back, ok, r)
		}
	}
	for _, tc := range []struct{ cache, image string }{
		{"cache.internal:5000", "nginx:1.27"},
		{"cache.internal:5000", "cache.internal:5001/docker.io/library/nginx"},
		{"cache.internal:5000", "cache.internal:5000/library/nginx"},    // no registry part
		{"cache.internal:5000", "cache.internal:50000/docker.io/nginx"}, // not a prefix match
	} {
		if r, ok := FromCache(tc.cache, tc.image); ok {
			t.Errorf("FromCache(%q, %q) = %+v, want not on the cache", tc.cache, tc.image, r)
		}
	}
}

// FuzzReference checks that ParseReference never panics, that what it
// accepts is normalised (parsing its String again gives the same value),
// and that the cache path maps back to the same reference.
func FuzzReference(f *testing.F) {
	for _, s := range []string{
		"nginx", "nginx:1.27", "docker.io/nginx", "ghcr.io/org/app@" + sha, "localhost:5000/a:b",
		"index.docker.io/x", "a/b/c:d@" + sha, "x:y:z", "@", ":", "host:1/a", "A/b", "a.b/c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			return
		}
		if !ValidName(r.Repository) || r.Registry == "" {
			t.Fatalf("ParseReference(%q) = %+v: invalid parts", s, r)
		}
		again, err := ParseReference(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseReference(%q) = %+v; its String %q parses as %+v, %v", s, r, r.String(), again, err)
		}
		const cache = "cache.internal:5000"
		back, ok := FromCache(cache, r.OnCache(cache))
		if !ok || back != r {
			t.Fatalf("FromCache(OnCache(%+v)) = %+v, %v", r, back, ok)
		}
	})
}
