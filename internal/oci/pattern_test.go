package oci

import (
	"strings"
	"testing"
)

func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern, image string
		want           bool
	}{
		{"docker.io/library/node:20*", "docker.io/library/node:20", true},
		{"docker.io/library/node:20*", "docker.io/library/node:20.11-alpine", true},
		{"docker.io/library/node:20*", "docker.io/library/node:18", false},
		{"docker.io/library/node:20*", "docker.io/library/node", false},
		{"ghcr.io/org/*", "ghcr.io/org/app:v1", true},
		{"ghcr.io/org/*", "ghcr.io/org/team/app@sha256:" + strings.Repeat("a", 64), true},
		{"ghcr.io/org/*", "ghcr.io/other/app:v1", false},
		{"docker.io/library/nginx", "docker.io/library/nginx:1.27", true},
		{"docker.io/library/nginx", "docker.io/library/nginx@sha256:" + strings.Repeat("b", 64), true},
		{"docker.io/library/nginx", "docker.io/library/nginx", true},
		{"docker.io/library/nginx", "docker.io/library/nginx-extra:1", false},
		{"localhost:5000/x", "localhost:5000/x:1", true},
		{"quay.io/x/y@sha256:" + strings.Repeat("c", 64), "quay.io/x/y@sha256:" + strings.Repeat("c", 64), true},
		{"quay.io/x/y@sha256:" + strings.Repeat("c", 64), "quay.io/x/y:latest", false},
		{"quay.io/x/y:1.*", "quay.io/x/y:1.2.3", true},
		{"quay.io/x/y:1.*", "quay.io/x/y:12", false},
		{"*", "docker.io/library/nginx:1", true},
		{"docker.io/*/*:latest", "docker.io/library/nginx:latest", true},
		{"docker.io/*/*:latest", "docker.io/library/nginx:1", false},
	} {
		if got := MatchPattern(tc.pattern, tc.image); got != tc.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tc.pattern, tc.image, got, tc.want)
		}
	}
}

func TestCheckPattern(t *testing.T) {
	for _, p := range []string{"docker.io/library/node:20*", "ghcr.io/org/*", "localhost:5000/a", "quay.io/x/y@sha256:" + strings.Repeat("c", 64)} {
		if err := CheckPattern(p); err != nil {
			t.Errorf("CheckPattern(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "nginx", "node:20*", "docker.io/", "docker.io/a b", "quay.io/x@sha256:zz", strings.Repeat("a", 2000)} {
		if err := CheckPattern(p); err == nil {
			t.Errorf("CheckPattern(%q) accepted it", p)
		}
	}
}

func FuzzMatchPattern(f *testing.F) {
	f.Add("docker.io/*:1*", "docker.io/library/nginx:1.27")
	f.Add("**a*b", "aaaabab")
	f.Fuzz(func(t *testing.T, p, s string) {
		if len(p) > 64 || len(s) > 256 {
			return
		}
		got := glob(p, s)
		if !strings.Contains(p, "*") && got != (p == s) {
			t.Fatalf("glob(%q, %q) = %v without a star", p, s, got)
		}
		if glob(p+"*", s) != true && got {
			t.Fatalf("adding a trailing star lost a match")
		}
		MatchPattern(p+"/x", s)
	})
}
