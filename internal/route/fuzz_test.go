package route

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/httpx"
)

// ociNameRE is the repository name grammar as the OCI distribution spec
// writes it.
var ociNameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)

// FuzzParse checks that Parse never panics and that whatever it accepts is
// safe to hand to a handler: a known endpoint, a clean repository name, and
// the reference that endpoint needs.
func FuzzParse(f *testing.F) {
	for _, seed := range []struct{ path, ns string }{
		{"/v2/", ""},
		{"/v2", "ghcr.io"},
		{"/v2/ghcr.io/org/app/manifests/1.2", ""},
		{"/v2/docker.io/nginx/manifests/latest", ""},
		{"/v2/nginx/blobs/" + sha256Empty, ""},
		{"/v2/nginx/manifests/" + sha512Empty, "registry-1.docker.io"},
		{"/v2/org/app/referrers/" + sha256Empty, "ghcr.io"},
		{"/v2/localhost:5000/team/app/tags/list", ""},
		{"/v2/a/manifests/b/manifests/c", ""},
		{"/v2/x/blobs/uploads/uuid", "localhost:5000"},
		{"/v2/a/blobs/uploads/manifests/latest", ""},
		{"/v2/../../etc/passwd/manifests/x", ""},
		{"/v2/docker.io/../x/blobs/sha256:..", "docker.io"},
		{"/v2/evil.com/x/manifests/1", "quay.io"},
		{"/v2/x/manifests/a:b", ""},
	} {
		f.Add(seed.path, seed.ns)
	}
	tab := newTestTable()
	f.Fuzz(func(t *testing.T, path, ns string) {
		checkParse(t, tab, path, ns)
	})
}

// FuzzParseDerived is FuzzParse with derived images configured, which
// take the names under derived/.
func FuzzParseDerived(f *testing.F) {
	for _, seed := range []struct{ path, ns string }{
		{"/v2/derived/vault/manifests/1.14", ""},
		{"/v2/derived/vault/blobs/" + sha256Empty, "docker.io"},
		{"/v2/derived/../x/manifests/1", ""},
		{"/v2/derived/a/b/tags/list", ""},
		{"/v2/derived/blobs/uploads/", ""},
		{"/v2/derived/manifests/1", ""},
	} {
		f.Add(seed.path, seed.ns)
	}
	tab := newTestTable()
	tab.Derive(ups["ghcr.io"]) // any Source stands in for the derived images'
	f.Fuzz(func(t *testing.T, path, ns string) {
		checkParse(t, tab, path, ns)
	})
}

// checkParse parses path and ns and checks the invariants every caller of
// Parse relies on.
func checkParse(t *testing.T, tab *Table, path, ns string) {
	t.Helper()
	r, err := tab.Parse(path, ns)
	if err != nil {
		var he *httpx.Error
		if !errors.As(err, &he) {
			t.Fatalf("Parse(%q, %q): error %T %v, want *httpx.Error", path, ns, err, err)
		}
		if he.Status < 400 || he.Status > 499 || he.Code == "" {
			t.Fatalf("Parse(%q, %q): %v, want a 4xx with a code", path, ns, he)
		}
		return
	}
	if r.Kind == Base {
		if r != (Route{Kind: Base}) {
			t.Fatalf("Parse(%q, %q) = %+v: a Base route carries nothing", path, ns, r)
		}
		return
	}
	if _, ok := kindNames[r.Kind]; !ok {
		t.Fatalf("Parse(%q, %q) = %+v: unknown kind", path, ns, r)
	}
	known := false
	for _, u := range testUpstreams {
		known = known || (u == r.Upstream && r.Source == cache.Source(u))
	}
	derived := r.Upstream == nil && tab.derived != nil && r.Source == tab.derived
	if !known && !derived {
		t.Fatalf("Parse(%q, %q) = %+v: upstream is not configured", path, ns, r)
	}
	if derived && (r.Name != DerivedPrefix+"/"+r.Repo || r.NS != "") {
		t.Fatalf("Parse(%q, %q) = %+v: a derived image is named derived/<repo>, whatever ns says", path, ns, r)
	}
	if !ociNameRE.MatchString(r.Repo) || strings.Contains(r.Repo, "..") || strings.Contains(r.Repo, "//") ||
		strings.HasPrefix(r.Repo, "/") || strings.HasSuffix(r.Repo, "/") {
		t.Fatalf("Parse(%q, %q) = %+v: invalid repository name", path, ns, r)
	}
	// The repo is the client's name less any upstream prefix, plus
	// library/ on Docker Hub; the client's name is in the path.
	if !strings.Contains(path, r.Name) ||
		!(r.Name == r.Repo || strings.HasSuffix(r.Name, "/"+r.Repo) ||
			r.Repo == "library/"+r.Name || strings.HasSuffix(r.Name, "/"+strings.TrimPrefix(r.Repo, "library/"))) {
		t.Fatalf("Parse(%q, %q) = %+v: repo does not come from the name", path, ns, r)
	}
	switch r.Kind {
	case Manifest:
		if (r.Tag == "") == (r.Digest == "") {
			t.Fatalf("Parse(%q, %q) = %+v: want exactly one of tag and digest", path, ns, r)
		}
		if r.Digest != "" && r.Digest.Validate() != nil {
			t.Fatalf("Parse(%q, %q) = %+v: invalid digest: %v", path, ns, r, r.Digest.Validate())
		}
		if r.Tag != "" && (len(r.Tag) > 128 || strings.ContainsAny(r.Tag, "/:") || r.Tag[0] == '.' || r.Tag[0] == '-') {
			t.Fatalf("Parse(%q, %q) = %+v: invalid tag", path, ns, r)
		}
	case Blob, Referrers:
		if r.Tag != "" || r.Digest.Validate() != nil {
			t.Fatalf("Parse(%q, %q) = %+v: want a valid digest and no tag", path, ns, r)
		}
	case Tags, Upload:
		if r.Tag != "" || r.Digest != "" {
			t.Fatalf("Parse(%q, %q) = %+v: want no reference", path, ns, r)
		}
	}
}
