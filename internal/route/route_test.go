package route

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/internal/config"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/upstream"
)

// The digests of "" under sha256 and sha512: valid, and easy to recognise.
const (
	sha256Empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	sha512Empty = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)

// testUpstreams is the configuration every test parses against: Docker Hub
// as the default, a plain registry, and one whose name carries a port.
var testUpstreams = []*upstream.Client{
	newUpstream("docker.io", "https://registry-1.docker.io"),
	newUpstream("ghcr.io", "https://ghcr.io"),
	newUpstream("localhost:5000", "http://localhost:5000"),
}

// ups are the test upstreams by name.
var ups = map[string]*upstream.Client{}

func init() {
	for _, u := range testUpstreams {
		ups[u.Name()] = u
	}
}

func newUpstream(name, rawURL string) *upstream.Client {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	return upstream.New(config.NewUpstream(name, u), nil, nil)
}

func newTestTable() *Table { return NewTable(testUpstreams, "docker.io") }

var kindNames = map[Kind]string{
	Base: "Base", Manifest: "Manifest", Blob: "Blob", Tags: "Tags", Referrers: "Referrers", Upload: "Upload",
}

func (k Kind) testString() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "Kind(?)"
}

func TestParse(t *testing.T) {
	name255 := strings.Repeat("a", 255)
	for _, tc := range []struct {
		name     string
		path, ns string
		want     Route
	}{
		{"base", "/v2/", "", Route{Kind: Base}},
		{"base without slash", "/v2", "", Route{Kind: Base}},
		{"base ignores ns", "/v2/", "quay.io", Route{Kind: Base}},

		// An upstream's name as the first part of the path picks it.
		{"prefix ghcr.io", "/v2/ghcr.io/org/app/manifests/1.2", "",
			Route{Kind: Manifest, Upstream: ups["ghcr.io"], Repo: "org/app", Name: "ghcr.io/org/app", Tag: "1.2"}},
		{"prefix docker.io one part gets library/", "/v2/docker.io/nginx/manifests/latest", "",
			Route{Kind: Manifest, Upstream: ups["docker.io"], Repo: "library/nginx", Name: "docker.io/nginx", Tag: "latest"}},
		{"prefix docker.io explicit library/", "/v2/docker.io/library/nginx/manifests/latest", "",
			Route{Kind: Manifest, Upstream: ups["docker.io"], Repo: "library/nginx", Name: "docker.io/library/nginx", Tag: "latest"}},
		{"prefix docker.io two parts", "/v2/docker.io/bitnami/redis/manifests/7", "",
			Route{Kind: Manifest, Upstream: ups["docker.io"], Repo: "bitnami/redis", Name: "docker.io/bitnami/redis", Tag: "7"}},
		{"prefix with port", "/v2/localhost:5000/team/app/manifests/v1", "",
			Route{Kind: Manifest, Upstream: ups["localhost:5000"], Repo: "team/app", Name: "localhost:5000/team/app", Tag: "v1"}},
		{"prefix one part on a non-Docker Hub upstream", "/v2/localhost:5000/app/manifests/v1", "",
			Route{Kind: Manifest, Upstream: ups["localhost:5000"], Repo: "app", Name: "localhost:5000/app", Tag: "v1"}},
		{"path prefix wins over ns", "/v2/ghcr.io/org/app/manifests/1", "docker.io",
			Route{Kind: Manifest, Upstream: ups["ghcr.io"], Repo: "org/app", Name: "ghcr.io/org/app", Tag: "1"}},

		// Without a prefix or ns, the default upstream.
		{"default blob", "/v2/nginx/blobs/" + sha256Empty, "",
			Route{Kind: Blob, Upstream: ups["docker.io"], Repo: "library/nginx", Name: "nginx", Digest: sha256Empty}},
		{"default two parts", "/v2/grafana/grafana/manifests/latest", "",
			Route{Kind: Manifest, Upstream: ups["docker.io"], Repo: "grafana/grafana", Name: "grafana/grafana", Tag: "latest"}},
		{"bare upstream name is a Docker Hub repo", "/v2/ghcr.io/manifests/latest", "",
			Route{Kind: Manifest, Upstream: ups["docker.io"], Repo: "library/ghcr.io", Name: "ghcr.io", Tag: "latest"}},

		// containerd's ?ns= names the upstream by name or by host.
		{"ns by name", "/v2/library/nginx/manifests/latest", "docker.io",
			Route{Kind: Manifest, Upstream: ups["docker.io"], Repo: "library/nginx", Name: "library/nginx", Tag: "latest"}},
		{"ns by host", "/v2/nginx/manifests/latest", "registry-1.docker.io",
			Route{Kind: Manifest, Upstream: ups["docker.io"], Repo: "library/nginx", Name: "nginx", Tag: "latest"}},
		{"ns ghcr.io", "/v2/org/app/manifests/1.2", "ghcr.io",
			Route{Kind: Manifest, Upstream: ups["ghcr.io"], Repo: "org/app", Name: "org/app", Tag: "1.2"}},
		{"ns one part on a non-Docker Hub upstream", "/v2/app/manifests/1", "ghcr.io",
			Route{Kind: Manifest, Upstream: ups["ghcr.io"], Repo: "app", Name: "app", Tag: "1"}},
		{"ns with port", "/v2/team/app/blobs/" + sha256Empty, "localhost:5000",
			Route{Kind: Blob, Upstream: ups["localhost:5000"], Repo: "team/app", Name: "team/app", Digest: sha256Empty}},
		{"ns makes a host-like first part part of the repo", "/v2/evil.com/x/manifests/1", "ghcr.io",
			Route{Kind: Manifest, Upstream: ups["ghcr.io"], Repo: "evil.com/x", Name: "evil.com/x", Tag: "1"}},

		// References.
		{"manifest by digest", "/v2/ghcr.io/org/app/manifests/" + sha256Empty, "",
			Route{Kind: Manifest, Upstream: ups["ghcr.io"], Repo: "org/app", Name: "ghcr.io/org/app", Digest: sha256Empty}},
		{"manifest by sha512 digest", "/v2/org/app/manifests/" + sha512Empty, "ghcr.io",
			Route{Kind: Manifest, Upstream: ups["ghcr.io"], Repo: "org/app", Name: "org/app", Digest: sha512Empty}},
		{"tag with every allowed character", "/v2/x/manifests/_V1.2-rc_3", "",
			Route{Kind: Manifest, Upstream: ups["docker.io"], Repo: "library/x", Name: "x", Tag: "_V1.2-rc_3"}},
		{"tag of 128 characters", "/v2/x/manifests/" + strings.Repeat("t", 128), "",
			Route{Kind: Manifest, Upstream: ups["docker.io"], Repo: "library/x", Name: "x", Tag: strings.Repeat("t", 128)}},

		// Names.
		{"name of 255 characters", "/v2/ghcr.io/" + name255 + "/manifests/1", "",
			Route{Kind: Manifest, Upstream: ups["ghcr.io"], Repo: name255, Name: "ghcr.io/" + name255, Tag: "1"}},
		{"name separators", "/v2/ghcr.io/a__b/c-d/e--f.g_h/manifests/1", "",
			Route{Kind: Manifest, Upstream: ups["ghcr.io"], Repo: "a__b/c-d/e--f.g_h", Name: "ghcr.io/a__b/c-d/e--f.g_h", Tag: "1"}},
		{"repo containing manifests", "/v2/a/manifests/b/manifests/c", "",
			Route{Kind: Manifest, Upstream: ups["docker.io"], Repo: "a/manifests/b", Name: "a/manifests/b", Tag: "c"}},
		{"repo named blobs", "/v2/blobs/blobs/" + sha256Empty, "",
			Route{Kind: Blob, Upstream: ups["docker.io"], Repo: "library/blobs", Name: "blobs", Digest: sha256Empty}},
		{"repo containing tags/list", "/v2/ghcr.io/x/tags/list/tags/list", "",
			Route{Kind: Tags, Upstream: ups["ghcr.io"], Repo: "x/tags/list", Name: "ghcr.io/x/tags/list"}},
		{"repo containing blobs/uploads, manifest", "/v2/ghcr.io/a/blobs/uploads/manifests/latest", "",
			Route{Kind: Manifest, Upstream: ups["ghcr.io"], Repo: "a/blobs/uploads", Name: "ghcr.io/a/blobs/uploads", Tag: "latest"}},
		{"repo containing blobs/uploads, blob", "/v2/ghcr.io/a/blobs/uploads/blobs/" + sha256Empty, "",
			Route{Kind: Blob, Upstream: ups["ghcr.io"], Repo: "a/blobs/uploads", Name: "ghcr.io/a/blobs/uploads", Digest: sha256Empty}},
		{"repo containing blobs/uploads, tags", "/v2/ghcr.io/a/blobs/uploads/tags/list", "",
			Route{Kind: Tags, Upstream: ups["ghcr.io"], Repo: "a/blobs/uploads", Name: "ghcr.io/a/blobs/uploads"}},

		// Other endpoints.
		{"tags list", "/v2/ghcr.io/org/app/tags/list", "",
			Route{Kind: Tags, Upstream: ups["ghcr.io"], Repo: "org/app", Name: "ghcr.io/org/app"}},
		{"tags list on Docker Hub", "/v2/nginx/tags/list", "",
			Route{Kind: Tags, Upstream: ups["docker.io"], Repo: "library/nginx", Name: "nginx"}},
		{"referrers", "/v2/ghcr.io/org/app/referrers/" + sha256Empty, "",
			Route{Kind: Referrers, Upstream: ups["ghcr.io"], Repo: "org/app", Name: "ghcr.io/org/app", Digest: sha256Empty}},
		{"upload start", "/v2/x/blobs/uploads/", "",
			Route{Kind: Upload, Upstream: ups["docker.io"], Repo: "library/x", Name: "x"}},
		{"upload start without slash", "/v2/x/blobs/uploads", "",
			Route{Kind: Upload, Upstream: ups["docker.io"], Repo: "library/x", Name: "x"}},
		{"upload session", "/v2/x/blobs/uploads/uuid", "",
			Route{Kind: Upload, Upstream: ups["docker.io"], Repo: "library/x", Name: "x", Session: "uuid"}},
		{"upload on ghcr.io", "/v2/ghcr.io/org/app/blobs/uploads/0f3c-42", "",
			Route{Kind: Upload, Upstream: ups["ghcr.io"], Repo: "org/app", Name: "ghcr.io/org/app", Session: "0f3c-42"}},
		{"upload to a repo containing blobs/uploads", "/v2/ghcr.io/a/blobs/uploads/blobs/uploads/", "",
			Route{Kind: Upload, Upstream: ups["ghcr.io"], Repo: "a/blobs/uploads", Name: "ghcr.io/a/blobs/uploads"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newTestTable().Parse(tc.path, tc.ns)
			if err != nil {
				t.Fatalf("Parse(%q, %q): %v", tc.path, tc.ns, err)
			}
			// ns is echoed when it picked the upstream: when the path
			// has no upstream prefix.
			prefixed := got.Upstream != nil && strings.HasPrefix(got.Name, got.Upstream.Name()+"/")
			if wantNS := map[bool]string{false: tc.ns, true: ""}[prefixed || got.Kind == Base]; got.NS != wantNS {
				t.Errorf("Parse(%q, %q): NS = %q, want %q", tc.path, tc.ns, got.NS, wantNS)
			}
			got.NS = ""
			if tc.want.Upstream != nil {
				tc.want.Source = tc.want.Upstream // an upstream's route pulls from it
			}
			if got != tc.want {
				t.Errorf("Parse(%q, %q)\n got %s %+v\nwant %s %+v",
					tc.path, tc.ns, got.Kind.testString(), got, tc.want.Kind.testString(), tc.want)
			}
			checkParse(t, newTestTable(), tc.path, tc.ns)
		})
	}
}

func TestParseErrors(t *testing.T) {
	const serves = "this cache serves docker.io, ghcr.io, localhost:5000"
	for _, tc := range []struct {
		name     string
		path, ns string
		status   int
		code     string
		message  string // checked when set
	}{
		// Upstreams that are not configured.
		{"ns unknown", "/v2/nginx/manifests/latest", "quay.io",
			http.StatusNotFound, oci.CodeNameUnknown, `unknown upstream "quay.io": ` + serves},
		{"ns unknown with a configured prefix in the repo", "/v2/org/ghcr.io/manifests/1", "quay.io",
			http.StatusNotFound, oci.CodeNameUnknown, `unknown upstream "quay.io": ` + serves},
		{"unconfigured host prefix", "/v2/evil.com/x/manifests/1", "",
			http.StatusNotFound, oci.CodeNameUnknown, `unknown upstream "evil.com": ` + serves},
		{"unconfigured host:port prefix", "/v2/evil:443/x/blobs/" + sha256Empty, "",
			http.StatusNotFound, oci.CodeNameUnknown, `unknown upstream "evil:443": ` + serves},
		{"unconfigured localhost prefix", "/v2/localhost/x/tags/list", "",
			http.StatusNotFound, oci.CodeNameUnknown, `unknown upstream "localhost": ` + serves},
		{"uppercase host-like prefix is no host", "/v2/Evil.com/x/manifests/1", "",
			http.StatusBadRequest, oci.CodeNameInvalid, `invalid repository name "Evil.com/x"`},
		{"host, not name, as a prefix", "/v2/registry-1.docker.io/library/nginx/manifests/latest", "",
			http.StatusNotFound, oci.CodeNameUnknown, `unknown upstream "registry-1.docker.io": ` + serves},

		// Digests.
		{"short digest", "/v2/x/blobs/sha256:abc", "", http.StatusBadRequest, oci.CodeDigestInvalid, ""},
		{"md5 digest", "/v2/x/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", "", http.StatusBadRequest, oci.CodeDigestInvalid, ""},
		{"uppercase hex", "/v2/x/blobs/" + strings.ToUpper(sha256Empty[:7]) + strings.ToUpper(sha256Empty[7:]), "",
			http.StatusBadRequest, oci.CodeDigestInvalid, ""},
		{"uppercase hex, lowercase algorithm", "/v2/x/blobs/sha256:" + strings.ToUpper(sha256Empty[7:]), "",
			http.StatusBadRequest, oci.CodeDigestInvalid, ""},
		{"sha256 of sha512 length", "/v2/x/blobs/sha256:" + sha512Empty[7:], "", http.StatusBadRequest, oci.CodeDigestInvalid, ""},
		{"manifest short digest", "/v2/x/manifests/sha256:abc", "", http.StatusBadRequest, oci.CodeDigestInvalid, ""},
		{"referrers short digest", "/v2/x/referrers/sha256:abc", "", http.StatusBadRequest, oci.CodeDigestInvalid, ""},
		{"blob by tag", "/v2/x/blobs/latest", "", http.StatusBadRequest, oci.CodeDigestInvalid, ""},
		{"referrers by tag", "/v2/x/referrers/latest", "", http.StatusBadRequest, oci.CodeDigestInvalid, ""},
		{"blob without digest", "/v2/x/blobs/", "", http.StatusBadRequest, oci.CodeDigestInvalid, ""},

		// Tags.
		{"tag of 129 characters", "/v2/x/manifests/" + strings.Repeat("t", 129), "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"hidden tag", "/v2/x/manifests/.hidden", "", http.StatusBadRequest, oci.CodeNameInvalid, `invalid tag ".hidden"`},
		{"tag starting with a dash", "/v2/x/manifests/-x", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"tag with a plus", "/v2/x/manifests/a+b", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"empty tag", "/v2/x/manifests/", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"tag with a colon is a digest attempt", "/v2/x/manifests/a:b", "", http.StatusBadRequest, oci.CodeDigestInvalid, ""},

		// Names.
		{"uppercase name", "/v2/Nginx/manifests/latest", "", http.StatusBadRequest, oci.CodeNameInvalid,
			`invalid repository name "Nginx"`},
		{"uppercase name after a prefix", "/v2/ghcr.io/Org/app/manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"dot-dot component", "/v2/a/../b/manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"empty component", "/v2/a//b/manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"trailing slash", "/v2/a//manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"leading slash", "/v2//a/manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"empty name", "/v2//manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"prefix only", "/v2/ghcr.io//manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"trailing separator", "/v2/a-/manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"three underscores", "/v2/a___b/manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"name of 256 characters", "/v2/" + strings.Repeat("a", 256) + "/manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"name of 256 characters after a prefix", "/v2/ghcr.io/" + strings.Repeat("a", 256) + "/manifests/1", "",
			http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"bad name with ns", "/v2/a//b/tags/list", "ghcr.io", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"bad name on upload", "/v2/A/blobs/uploads/", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},

		// Path traversal: the router decodes %2e%2e to "..", so both forms
		// reach Parse as "..". A raw %2e is no valid name either.
		{"traversal from the root", "/v2/../../etc/passwd/manifests/x", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"traversal from the root with ns", "/v2/../../etc/passwd/manifests/x", "ghcr.io", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"traversal after a prefix", "/v2/docker.io/../x/blobs/" + sha256Empty, "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"traversal out of a prefix", "/v2/ghcr.io/../../manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"undecoded %2e%2e", "/v2/docker.io/%2e%2e/x/manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"dot component", "/v2/a/./b/manifests/1", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"dot-dot tag", "/v2/x/manifests/..", "", http.StatusBadRequest, oci.CodeNameInvalid, ""},
		{"traversal in the reference", "/v2/x/manifests/../../../etc/passwd", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"traversal in the digest", "/v2/x/blobs/sha256:../../../etc/passwd", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"traversal after uploads", "/v2/x/blobs/uploads/../../../y", "", http.StatusNotFound, oci.CodeUnsupported, ""},

		// Not registry API endpoints that a cache serves.
		{"catalog", "/v2/_catalog", "", http.StatusNotFound, oci.CodeUnsupported, `no registry API endpoint at "_catalog"`},
		{"v1", "/v1/x", "", http.StatusNotFound, oci.CodeUnsupported, `no registry API endpoint at "/v1/x"`},
		{"unknown endpoint", "/v2/x/foo/bar", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"root", "/", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"empty path", "", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"v2 with a suffix", "/v2x", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"name only", "/v2/x", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"manifests without reference", "/v2/x/manifests", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"tags without list", "/v2/x/tags", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"tags list with trailing slash", "/v2/x/tags/list/", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"uploads lookalike", "/v2/x/blobs/uploadsX/", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"upload without name", "/v2/blobs/uploads/", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"upload session with slashes", "/v2/x/blobs/uploads/a/b", "", http.StatusNotFound, oci.CodeUnsupported, ""},
		{"upload session with a percent", "/v2/x/blobs/uploads/a%2Fb", "", http.StatusNotFound, oci.CodeBlobUploadUnknown, ""},
		{"upload session of dots", "/v2/x/blobs/uploads/..", "", http.StatusNotFound, oci.CodeBlobUploadUnknown, ""},
		{"long path is cut in the message", "/v2/" + strings.Repeat("x", 400), "", http.StatusNotFound, oci.CodeUnsupported,
			`no registry API endpoint at "` + strings.Repeat("x", 300) + `"...`},
		{"long name is cut in the message", "/v2/" + strings.Repeat("X", 100000) + "/manifests/latest", "", http.StatusBadRequest, oci.CodeNameInvalid,
			`invalid repository name "` + strings.Repeat("X", 300) + `"...`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newTestTable().Parse(tc.path, tc.ns)
			var he *httpx.Error
			if !errors.As(err, &he) {
				t.Fatalf("Parse(%q, %q) = %v, want an *httpx.Error", tc.path, tc.ns, err)
			}
			if he.Status != tc.status || he.Code != tc.code {
				t.Errorf("Parse(%q, %q) = %d %s (%s), want %d %s", tc.path, tc.ns, he.Status, he.Code, he.Message, tc.status, tc.code)
			}
			if tc.message != "" && he.Message != tc.message {
				t.Errorf("message = %q, want %q", he.Message, tc.message)
			}
			checkParse(t, newTestTable(), tc.path, tc.ns)
		})
	}
}

// TestParseNoDefault: a table whose default is not configured refuses
// unprefixed names rather than guessing an upstream.
func TestParseNoDefault(t *testing.T) {
	tab := NewTable(testUpstreams, "")
	_, err := tab.Parse("/v2/nginx/manifests/latest", "")
	var he *httpx.Error
	if !errors.As(err, &he) || he.Status != http.StatusNotFound || he.Code != oci.CodeNameUnknown {
		t.Fatalf("Parse without a default = %v, want 404 %s", err, oci.CodeNameUnknown)
	}
	if want := `unknown upstream "(default)": this cache serves docker.io, ghcr.io, localhost:5000`; he.Message != want {
		t.Errorf("message = %q, want %q", he.Message, want)
	}
	// A prefix or ns still works.
	got, err := tab.Parse("/v2/ghcr.io/org/app/tags/list", "")
	if want := (Route{Kind: Tags, Source: ups["ghcr.io"], Upstream: ups["ghcr.io"], Repo: "org/app", Name: "ghcr.io/org/app"}); err != nil || got != want {
		t.Errorf("Parse with prefix = %+v, %v; want %+v", got, err, want)
	}
}

// TestParseDerived: with derived images configured, derived/ names them
// whatever the default upstream or ns; without, it is a repository name.
func TestParseDerived(t *testing.T) {
	tab := newTestTable()
	got, err := tab.Parse("/v2/derived/vault/manifests/1.14", "")
	if err != nil || got.Upstream == nil || got.Repo != "derived/vault" {
		t.Fatalf("without derive: %+v, %v; want docker.io's derived/vault", got, err)
	}
	src := ups["ghcr.io"] // any Source stands in for the derived images'
	tab.Derive(src)
	for _, ns := range []string{"", "docker.io"} {
		got, err = tab.Parse("/v2/derived/vault/manifests/1.14", ns)
		want := Route{Kind: Manifest, Source: src, Repo: "vault", Name: "derived/vault", Tag: "1.14"}
		if err != nil || got != want {
			t.Errorf("ns %q: %+v, %v; want %+v", ns, got, err, want)
		}
	}
	var he *httpx.Error
	if _, err := tab.Parse("/v2/derived/Bad/manifests/1", ""); !errors.As(err, &he) || he.Status != http.StatusBadRequest {
		t.Errorf("invalid derived name: %v, want 400", err)
	}
}

// TestNewTableNamesWinOverHosts: an upstream's name always resolves to it
// as ns, whatever order the configuration lists upstreams in.
func TestNewTableNamesWinOverHosts(t *testing.T) {
	mirror := newUpstream("mirror", "https://ghcr.io")
	ghcr := newUpstream("ghcr.io", "https://ghcr.io")
	for _, ups := range [][]*upstream.Client{{mirror, ghcr}, {ghcr, mirror}} {
		got, err := NewTable(ups, "").Parse("/v2/org/app/tags/list", "ghcr.io")
		if err != nil || got.Upstream != ghcr {
			t.Errorf("upstreams %s, %s: ns=ghcr.io went to %v (%v), want ghcr.io", ups[0].Name(), ups[1].Name(), got.Upstream, err)
		}
	}
}

// TestParseNeverTraverses crosses traversal attempts with every ns and
// checks that whatever Parse accepts is a clean repository name.
func TestParseNeverTraverses(t *testing.T) {
	paths := []string{
		"/v2/../../etc/passwd/manifests/x",
		"/v2/docker.io/../x/blobs/" + sha256Empty,
		"/v2/docker.io/../../x/manifests/latest",
		"/v2/ghcr.io/..",
		"/v2/../manifests/1",
		"/v2/./x/manifests/1",
		"/v2/x/..//manifests/1",
		"/v2/x/../tags/list",
		"/v2/../blobs/uploads/",
		"/v2/x/../../blobs/uploads/",
		"/v2/a/../../b/referrers/" + sha256Empty,
		"/v2/.../x/manifests/1",
		"/v2/x/manifests/..",
		"/v2/x/manifests/../../../../etc/shadow",
		"/v2/x/blobs/sha256:../../../etc/passwd",
	}
	for _, p := range paths {
		for _, ns := range []string{"", "docker.io", "registry-1.docker.io", "ghcr.io", "localhost:5000", ".."} {
			r, err := newTestTable().Parse(p, ns)
			if err == nil && (strings.Contains(r.Repo, "..") || r.Tag == "..") {
				t.Errorf("Parse(%q, %q) = %+v: traversal accepted", p, ns, r)
			}
			checkParse(t, newTestTable(), p, ns)
		}
	}
}
