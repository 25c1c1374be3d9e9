package oci

import (
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// ociNameRE is the repository name grammar as the OCI distribution spec
// writes it, kept apart from the package's own copy so the two check each
// other.
var ociNameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)

// ociTagRE is the spec's tag grammar.
var ociTagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// FuzzGrammar checks the hand-written matchers against the spec's regular
// expressions.
func FuzzGrammar(f *testing.F) {
	for _, s := range []string{
		"", "a", "library/nginx", "a.b_c__d---e/f", "a..b", "a___b", "a_.b", "-a", "a-", "a/", "/a",
		"a//b", "A", "a:b", "sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("0", 63),
		"sha512:" + strings.Repeat("f", 128), "_tag", "v1.2.3-rc.1", "Latest", ".hidden", strings.Repeat("a", 128), strings.Repeat("a", 129),
		strings.Repeat("ab/", 90) + "c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidName(s), len(s) <= MaxNameLength && ociNameRE.MatchString(s); got != want {
			t.Fatalf("ValidName(%q) = %v, the spec's grammar says %v", s, got, want)
		}
		if got, want := ValidTag(s), ociTagRE.MatchString(s); got != want {
			t.Fatalf("ValidTag(%q) = %v, the spec's grammar says %v", s, got, want)
		}
		d, err := ParseDigest(s)
		want, werr := digest.Parse(s)
		if werr != nil {
			want = ""
		}
		if (err == nil) != (werr == nil) || d != want {
			t.Fatalf("ParseDigest(%q) = %q, %v; go-digest says %q, %v", s, d, err, want, werr)
		}
	})
}
