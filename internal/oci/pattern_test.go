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

func TestCheckRepoPattern(t *testing.T) {
	for _, p := range []string{"library/nginx", "library/node:20*", "myorg/*", "myorg/**", "library/*:1.27.*", "*", "*:latest", "*nginx", "a/b/c:v1_x-2.0"} {
		if err := CheckRepoPattern(p); err != nil {
			t.Errorf("CheckRepoPattern(%q): %v", p, err)
		}
	}
	for _, tc := range []struct{ pattern, want string }{
		{"", "empty pattern"},
		{strings.Repeat("a", 2000), "too long"},
		{"library/nginx@sha256:" + strings.Repeat("a", 64), "names a digest"},
		{"library/Nginx", "not a repository pattern"},
		{"myorg/", "not a repository pattern"},
		{"/x", "not a repository pattern"},
		{"library/nginx:", "not a tag pattern"},
		{"library/nginx:.x", "not a tag pattern"},
		{"library/nginx:a:b", "not a tag pattern"},
		{"library/nginx:a/b", "not a tag pattern"},
		{"my org/x", "not a repository pattern"},
	} {
		err := CheckRepoPattern(tc.pattern)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckRepoPattern(%q) = %v, want an error with %q", tc.pattern, err, tc.want)
		}
	}
}

func TestSplitRepoPattern(t *testing.T) {
	for _, tc := range []struct{ pattern, repo, tag string }{
		{"library/nginx", "library/nginx", ""},
		{"library/node:20*", "library/node", "20*"},
		{"*:latest", "*", "latest"},
	} {
		if repo, tag := SplitRepoPattern(tc.pattern); repo != tc.repo || tag != tc.tag {
			t.Errorf("SplitRepoPattern(%q) = %q, %q; want %q, %q", tc.pattern, repo, tag, tc.repo, tc.tag)
		}
	}
}

// A repository pattern that CheckRepoPattern accepts splits into parts
// that, without stars, match exactly the name and tag they spell, and the
// star never lets the repository part reach into a tag.
func FuzzRepoPattern(f *testing.F) {
	for _, p := range []string{"library/nginx", "library/node:20*", "myorg/**", "*:1.*", "a-b/c_d:e"} {
		f.Add(p, "library/nginx", "1.27")
	}
	f.Fuzz(func(t *testing.T, p, repo, tag string) {
		if len(p) > 128 || len(repo) > 128 || len(tag) > 128 || CheckRepoPattern(p) != nil {
			return
		}
		rp, tp := SplitRepoPattern(p)
		if strings.ContainsAny(rp, ":@") || strings.ContainsAny(tp, ":/@") {
			t.Fatalf("SplitRepoPattern(%q) = %q, %q", p, rp, tp)
		}
		if !strings.Contains(rp, "*") && Glob(rp, repo) != (rp == repo) {
			t.Fatalf("Glob(%q, %q) without a star", rp, repo)
		}
		if tp != "" && !strings.Contains(tp, "*") && Glob(tp, tag) != (tp == tag) {
			t.Fatalf("Glob(%q, %q) without a star", tp, tag)
		}
		if !ValidName(strings.ReplaceAll(rp, "*", "x")) {
			t.Fatalf("accepted %q whose repository part is no name", p)
		}
		if tp != "" && !ValidTag(strings.ReplaceAll(tp, "*", "x")) {
			t.Fatalf("accepted %q whose tag part is no tag", p)
		}
	})
}
