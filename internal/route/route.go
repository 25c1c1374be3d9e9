// Package route parses a registry API request into a validated Route: which
// endpoint, which upstream, which repository on it, and which reference.
// Handlers take a Route, never the raw path, so every name, tag and digest
// they see has already been checked (no path traversal reaches the store).
package route

import (
	"net/http"
	"strings"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/opencontainers/go-digest"
)

// Kind is the API endpoint a request addresses.
type Kind int

const (
	Base      Kind = iota // GET /v2/
	Manifest              // /v2/<name>/manifests/<reference>
	Blob                  // /v2/<name>/blobs/<digest>
	Tags                  // /v2/<name>/tags/list
	Referrers             // /v2/<name>/referrers/<digest>
	Upload                // /v2/<name>/blobs/uploads/...: pushes
)

// Route is a parsed request.
type Route struct {
	Kind Kind
	// Source is what the request pulls from: Upstream, or the derived
	// images' source (the Table's Derived) for a name under derived/;
	// nil for Base.
	Source cache.Source
	// Upstream is the upstream the request goes to; nil for Base and for
	// derived images, which take no pushes.
	Upstream *upstream.Client
	// Repo is the repository on the upstream, e.g. "library/nginx".
	Repo string
	// Name is the repository as the client wrote it, e.g.
	// "docker.io/nginx"; responses that echo a name (tag lists, Link
	// headers) use it.
	Name string
	// Tag is set for a manifest requested by tag; Digest for a manifest
	// by digest, a blob and referrers.
	Tag    string
	Digest digest.Digest
	// NS is containerd's ?ns= value when it picked the upstream; the
	// answer echoes it as OCI-Namespace.
	NS string
	// Session is an upload's session id, after /blobs/uploads/; "" for
	// the POST that starts one.
	Session string
}

// validSession accepts the upload session ids registries hand out (UUIDs,
// base64url and the like), and nothing that could climb out of the path.
func validSession(s string) bool {
	if len(s) > 256 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', strings.ContainsRune("-_.=~+", r):
		default:
			return false
		}
	}
	return true
}

// Table resolves upstream names. It is built once and read-only after.
type Table struct {
	byName map[string]*upstream.Client
	byNS   map[string]*upstream.Client
	def    *upstream.Client
	names  string // "docker.io, ghcr.io", for NAME_UNKNOWN messages
	// derived serves the names under derived/ (DerivedPrefix); nil: none
	// are configured, and derived/ is a repository like any other.
	derived cache.Source
}

// DerivedPrefix is the first part of a derived image's name.
const DerivedPrefix = "derived"

// Derive routes the names under derived/ to src.
func (t *Table) Derive(src cache.Source) { t.derived = src }

// NewTable returns a table of ups whose default is the one named def.
// The ns parameter may name an upstream or its URL's host.
func NewTable(ups []*upstream.Client, def string) *Table {
	t := &Table{byName: map[string]*upstream.Client{}, byNS: map[string]*upstream.Client{}}
	var names []string
	for _, u := range ups {
		t.byName[u.Name()] = u
		t.byNS[u.Name()] = u
		if _, taken := t.byNS[u.Host()]; !taken && u.Host() != "" {
			t.byNS[u.Host()] = u
		}
		if u.Name() == def {
			t.def = u
		}
		names = append(names, u.Name())
	}
	t.names = strings.Join(names, ", ")
	return t
}

// Parse parses a request path (r.URL.Path) and containerd's ns parameter.
func (t *Table) Parse(path, ns string) (Route, error) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return Route{Kind: Base}, nil
		}
		return Route{}, notFound(path)
	}
	if rest == "" {
		return Route{Kind: Base}, nil
	}
	r, name, ref, err := splitEndpoint(rest)
	if err != nil {
		return Route{}, err
	}
	if err := t.resolve(&r, name, ns); err != nil {
		return Route{}, err
	}
	switch r.Kind {
	case Manifest:
		if strings.Contains(ref, ":") {
			r.Digest, err = parseDigest(ref)
		} else if oci.ValidTag(ref) {
			r.Tag = ref
		} else {
			err = httpx.Errorf(http.StatusBadRequest, oci.CodeNameInvalid, "invalid tag %s", httpx.Quote(ref))
		}
	case Blob, Referrers:
		r.Digest, err = parseDigest(ref)
	}
	return r, err
}

// splitEndpoint finds the endpoint from the end of the path, since a
// repository name may itself contain "manifests" or "blobs".
func splitEndpoint(rest string) (r Route, name, ref string, err error) {
	// An upload is <name>/blobs/uploads, optionally followed by one session
	// id (which has no slash). Anchoring at the end keeps a name with a
	// "blobs/uploads" part, e.g. a/blobs/uploads/manifests/latest, from
	// being taken for an upload.
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads"); ok && name != "" {
		return Route{Kind: Upload}, name, "", nil
	}
	if slash := strings.LastIndexByte(rest, '/'); slash >= 0 {
		if name, ok := strings.CutSuffix(rest[:slash], "/blobs/uploads"); ok && name != "" {
			session := rest[slash+1:]
			if session != "" && !validSession(session) {
				return Route{}, "", "", httpx.Errorf(http.StatusNotFound, oci.CodeBlobUploadUnknown, "invalid upload session %s", httpx.Quote(session))
			}
			return Route{Kind: Upload, Session: session}, name, "", nil
		}
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return Route{Kind: Tags}, name, "", nil
	}
	slash := strings.LastIndexByte(rest, '/')
	if slash < 0 {
		return Route{}, "", "", notFound(rest)
	}
	before, ref := rest[:slash], rest[slash+1:]
	slash = strings.LastIndexByte(before, '/')
	if slash < 0 {
		return Route{}, "", "", notFound(rest)
	}
	name, endpoint := before[:slash], before[slash+1:]
	switch endpoint {
	case "manifests":
		r.Kind = Manifest
	case "blobs":
		r.Kind = Blob
	case "referrers":
		r.Kind = Referrers
	default:
		return Route{}, "", "", notFound(rest)
	}
	return r, name, ref, nil
}

// resolve picks the upstream: a configured name as the first path part,
// else containerd's ns parameter, else the default. Without ns, a first
// part that looks like a registry host but is not configured is refused, so
// that a request meant for another registry never reaches the default one.
func (t *Table) resolve(r *Route, name, ns string) error {
	r.Name = name
	first, after, nested := strings.Cut(name, "/")
	if nested && first == DerivedPrefix && t.derived != nil {
		if !oci.ValidName(after) {
			return httpx.Errorf(http.StatusBadRequest, oci.CodeNameInvalid, "invalid repository name %s", httpx.Quote(name))
		}
		r.Source, r.Repo = t.derived, after
		return nil
	}
	var up *upstream.Client
	switch {
	case nested && t.byName[first] != nil:
		up, name = t.byName[first], after
	case ns != "":
		if up = t.byNS[ns]; up == nil {
			return t.unknown(ns)
		}
		r.NS = ns
	case nested && oci.IsHost(first):
		return t.unknown(first)
	default:
		if up = t.def; up == nil {
			return t.unknown("(default)")
		}
	}
	if !oci.ValidName(name) {
		return httpx.Errorf(http.StatusBadRequest, oci.CodeNameInvalid, "invalid repository name %s", httpx.Quote(name))
	}
	if up.DockerHub() && !strings.Contains(name, "/") {
		name = "library/" + name
	}
	r.Source, r.Upstream, r.Repo = up, up, name
	return nil
}

func (t *Table) unknown(name string) error {
	return httpx.Errorf(http.StatusNotFound, oci.CodeNameUnknown,
		"unknown upstream %s: this cache serves %s", httpx.Quote(name), t.names)
}

func parseDigest(s string) (digest.Digest, error) {
	d, err := oci.ParseDigest(s)
	if err != nil {
		return "", httpx.Errorf(http.StatusBadRequest, oci.CodeDigestInvalid, "invalid digest %s: %v", httpx.Quote(s), err)
	}
	return d, nil
}

func notFound(path string) error {
	return httpx.Errorf(http.StatusNotFound, oci.CodeUnsupported, "no registry API endpoint at %s", httpx.Quote(path))
}
