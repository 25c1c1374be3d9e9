package registry

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/entrepot/entrepot/internal/cache"
	"github.com/entrepot/entrepot/internal/httpx"
	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/route"
	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/opencontainers/go-digest"
)

// Pushes through the cache, for an upstream with upstreams[].push: every
// request of the push API is forwarded to the upstream with its
// credentials, bodies streamed, and the upstream's answer goes back as it
// gave it, its Location rewritten into the cache. What passes is stored
// (write-through, writethrough.go), once the upstream has accepted it.
// The access gate has let only clients granted push this far.
func (s *Server) push(w http.ResponseWriter, r *http.Request, rt route.Route) error {
	if a, ok := w.(*answer); ok {
		a.forwarded = true
	}
	switch {
	case rt.Kind == route.Upload:
		return s.upload(w, r, rt)
	case rt.Kind == route.Manifest && r.Method == http.MethodPut:
		return s.putManifest(w, r, rt)
	case r.Method == http.MethodDelete && (rt.Kind == route.Manifest || rt.Kind == route.Blob):
		return s.delete(w, r, rt)
	}
	w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
	if rt.Kind != route.Manifest {
		w.Header().Set("Allow", "GET, HEAD, DELETE")
	}
	return httpx.Errorf(http.StatusMethodNotAllowed, oci.CodeUnsupported, "%s is not part of the push API here", r.Method)
}

// uploadHeaders are the request headers of a blob upload that go on to
// the upstream.
var uploadHeaders = []string{"Content-Type", "Content-Range"}

// upload forwards a request of a blob upload: the POST that starts it (or
// mounts a blob, or uploads it whole), a PATCH of a chunk, the PUT that
// ends it, a GET of its status, a DELETE that cancels it.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, rt route.Route) error {
	up := rt.Upstream
	switch {
	case rt.Session == "" && r.Method != http.MethodPost,
		rt.Session != "" && r.Method == http.MethodPost:
		w.Header().Set("Allow", "POST")
		if rt.Session != "" {
			w.Header().Set("Allow", "GET, PATCH, PUT, DELETE")
		}
		return httpx.Errorf(http.StatusMethodNotAllowed, oci.CodeUnsupported, "%s is not part of the upload API here", r.Method)
	}
	q := r.URL.Query()
	q.Del("ns")
	scopes := []string{upstream.PushScope(rt.Repo)}
	if q.Has("mount") {
		// from names a repository as the client does: on this upstream,
		// the upstream mounts it; elsewhere, it cannot, and the client
		// uploads the blob (a 202 says so).
		from, err := s.routes.Parse("/v2/"+q.Get("from")+"/tags/list", rt.NS)
		if err == nil && from.Upstream == up {
			q.Set("from", from.Repo)
			scopes = append(scopes, upstream.PullScope(from.Repo))
		} else {
			q.Del("mount")
			q.Del("from")
		}
	}
	var d digest.Digest
	if v := q.Get("digest"); v != "" {
		var err error
		if d, err = digest.Parse(v); err != nil {
			return httpx.Errorf(http.StatusBadRequest, oci.CodeDigestInvalid, "invalid digest %s", httpx.Quote(v))
		}
	}
	body, length := requestBody(r)
	base := up.Name() + "/" + rt.Repo
	wt := s.writes.track(base, rt.Session, r, d)
	if body != nil && wt != nil {
		body = io.TeeReader(body, wt)
	}
	resp, err := up.Push(r.Context(), r.Method, rt.Repo, "blobs/uploads/"+rt.Session, q, pick(r.Header, uploadHeaders), body, length, scopes...)
	if err != nil {
		s.writes.fail(wt)
		return err
	}
	s.writes.answered(base, rt.Session, wt, r, resp, d)
	return s.relay(w, rt, resp)
}

// requestBody is the body of a request to forward, nil when it has none.
func requestBody(r *http.Request) (io.Reader, int64) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, 0
	}
	return r.Body, r.ContentLength
}

// putManifest forwards a manifest PUT, once the upstream holds everything
// the manifest refers to (ensureRefs), and stores the manifest and its
// tags when the upstream accepts it.
func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, rt route.Route) error {
	up := rt.Upstream
	body, err := io.ReadAll(io.LimitReader(r.Body, oci.MaxManifestSize+1))
	if err != nil {
		return httpx.Errorf(http.StatusBadRequest, oci.CodeManifestInvalid, "reading the manifest: %v", err)
	}
	if len(body) > oci.MaxManifestSize {
		return httpx.Errorf(http.StatusRequestEntityTooLarge, oci.CodeSizeInvalid, "manifest over %d bytes", oci.MaxManifestSize)
	}
	d := digest.Canonical.FromBytes(body)
	if rt.Digest != "" {
		if got := rt.Digest.Algorithm().FromBytes(body); got != rt.Digest {
			return httpx.Errorf(http.StatusBadRequest, oci.CodeDigestInvalid, "the manifest hashes to %s, not %s", got, rt.Digest)
		}
		d = rt.Digest
	}
	mediaType, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	mediaType = strings.TrimSpace(mediaType)
	if err := s.ensureRefs(r, rt, mediaType, body, 0); err != nil {
		s.log.Warn("push: could not check what the manifest refers to upstream", "upstream", up.Name(), "repo", rt.Repo, "digest", d, "err", err)
	}
	ref := rt.Tag
	if ref == "" {
		ref = d.String()
	}
	q := r.URL.Query()
	q.Del("ns")
	header := pick(r.Header, []string{"Content-Type"})
	resp, err := up.Push(r.Context(), http.MethodPut, rt.Repo, "manifests/"+ref, q, header, bytes.NewReader(body), int64(len(body)), upstream.PushScope(rt.Repo))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusCreated {
		tags := q["tag"]
		if rt.Tag != "" {
			tags = append(tags, rt.Tag)
		}
		m := &cache.Manifest{Digest: d, MediaType: mediaType, Size: int64(len(body)), Body: body}
		if err := s.cache.PushedManifest(r.Context(), up, rt.Repo, validTags(tags), m); err != nil {
			s.log.Warn("push: manifest not stored in the cache", "upstream", up.Name(), "repo", rt.Repo, "digest", d, "err", err)
		}
	}
	return s.relay(w, rt, resp)
}

// validTags keeps the tags that are tags.
func validTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		if oci.ValidTag(t) {
			out = append(out, t)
		}
	}
	return out
}

// maxRefDepth bounds ensureRefs' descent: an index of indexes of images.
const maxRefDepth = 3

// ensureRefs makes sure that the upstream repository holds what a
// manifest refers to before the manifest goes there. A client asks the
// cache whether a blob or manifest exists, and the cache answers from what
// it holds, which may have come from another repository or upstream: the
// client then skips the upload, and the upstream would refuse the
// manifest. So what the upstream lacks and the cache holds is pushed to it
// from the cache here. What neither has is left for the upstream to refuse.
func (s *Server) ensureRefs(r *http.Request, rt route.Route, mediaType string, body []byte, depth int) error {
	ctx, up := r.Context(), rt.Upstream
	index := oci.IsIndex(mediaType)
	for _, d := range cache.Refs(body) {
		if index {
			if _, err := up.Resolve(ctx, rt.Repo, d.String()); !errors.Is(err, oci.ErrNotFound) {
				if err != nil {
					return err
				}
				continue
			}
			m, err := s.cache.StoredManifest(ctx, d)
			if err != nil || m == nil || depth >= maxRefDepth {
				continue
			}
			if err := s.ensureRefs(r, rt, m.MediaType, m.Body, depth+1); err != nil {
				return err
			}
			resp, err := up.Push(ctx, http.MethodPut, rt.Repo, "manifests/"+d.String(), nil,
				http.Header{"Content-Type": {m.MediaType}}, bytes.NewReader(m.Body), int64(len(m.Body)), upstream.PushScope(rt.Repo))
			if err != nil {
				return err
			}
			resp.Body.Close()
			s.log.Info("push: sent the upstream a manifest it lacked, from the cache", "upstream", up.Name(), "repo", rt.Repo, "digest", d, "status", resp.StatusCode)
			continue
		}
		if _, err := up.StatBlob(ctx, rt.Repo, d); !errors.Is(err, oci.ErrNotFound) {
			if err != nil {
				return err
			}
			continue
		}
		if err := s.pushStoredBlob(r, rt, d); err != nil {
			return err
		}
	}
	return nil
}

// pushStoredBlob uploads stored blob d to the upstream repository, whole:
// a POST, then a PUT of its bytes from the store.
func (s *Server) pushStoredBlob(r *http.Request, rt route.Route, d digest.Digest) error {
	ctx, up := r.Context(), rt.Upstream
	blob, size, err := s.cache.StoredBlob(ctx, d)
	if err != nil || blob == nil {
		return err
	}
	defer blob.Close()
	resp, err := up.Push(ctx, http.MethodPost, rt.Repo, "blobs/uploads/", nil, nil, nil, 0, upstream.PushScope(rt.Repo))
	if err != nil {
		return err
	}
	resp.Body.Close()
	rest, ok := up.Within(rt.Repo, resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusAccepted || !ok {
		return errors.New("upstream did not start an upload here: " + resp.Status)
	}
	path, rawQuery, _ := strings.Cut(rest, "?")
	q, _ := url.ParseQuery(rawQuery)
	q.Set("digest", d.String())
	resp, err = up.Push(ctx, http.MethodPut, rt.Repo, path, q,
		http.Header{"Content-Type": {"application/octet-stream"}}, blob, size, upstream.PushScope(rt.Repo))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return errors.New("upstream refused blob " + d.String() + ": " + resp.Status)
	}
	s.log.Info("push: sent the upstream a blob it lacked, from the cache", "upstream", up.Name(), "repo", rt.Repo, "digest", d, "size", size)
	return nil
}

// delete forwards the DELETE of a manifest, a tag or a blob, and removes
// what the upstream deleted from the cache.
func (s *Server) delete(w http.ResponseWriter, r *http.Request, rt route.Route) error {
	up := rt.Upstream
	path := "blobs/" + rt.Digest.String()
	if rt.Kind == route.Manifest {
		path = "manifests/" + rt.Tag
		if rt.Tag == "" {
			path = "manifests/" + rt.Digest.String()
		}
	}
	resp, err := up.Push(r.Context(), http.MethodDelete, rt.Repo, path, nil, nil, nil, 0, upstream.PushScope(rt.Repo))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusAccepted && rt.Kind == route.Manifest {
		if _, err := s.cache.Purge(r.Context(), up.Name(), rt.Repo, rt.Tag, rt.Digest); err != nil && !errors.Is(err, oci.ErrNotFound) {
			s.log.Warn("push: deleted upstream, but not purged from the cache", "upstream", up.Name(), "repo", rt.Repo, "ref", path, "err", err)
		}
	}
	return s.relay(w, rt, resp)
}

// answerHeaders are the upstream's answer headers of the push API that go
// back to the client (Location is rewritten first).
var answerHeaders = []string{"Content-Type", "Docker-Upload-UUID", "Range", "Docker-Content-Digest", "OCI-Subject", "OCI-Chunk-Min-Length", "Retry-After"}

// relay writes the upstream's answer: its status, its push API headers,
// Location rewritten into the cache, and its body (an error's, usually).
// The upstream's challenge is its own, not the client's: a 401 goes back
// without it.
func (s *Server) relay(w http.ResponseWriter, rt route.Route, resp *http.Response) error {
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range pick(resp.Header, answerHeaders) {
		h[k] = vs
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		h.Set("Location", s.clientLocation(rt, loc))
	}
	const maxAnswer = 1 << 20
	if resp.ContentLength >= 0 && resp.ContentLength <= maxAnswer {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, io.LimitReader(resp.Body, maxAnswer))
	return nil
}

// clientLocation rewrites an upstream's Location into the cache, under the
// name and route the client used: /v2/<upstream>/<repo>/blobs/uploads/...
// for /v2/<repo>/blobs/uploads/... on the upstream. A Location elsewhere
// (a storage backend's own upload URL) goes back as it is.
func (s *Server) clientLocation(rt route.Route, loc string) string {
	rest, ok := rt.Upstream.Within(rt.Repo, loc)
	if !ok {
		return loc
	}
	path, rawQuery, _ := strings.Cut(rest, "?")
	out := "/v2/" + rt.Name + "/" + path
	if rt.NS != "" {
		q, _ := url.ParseQuery(rawQuery)
		q.Set("ns", rt.NS)
		rawQuery = q.Encode()
	}
	if rawQuery != "" {
		out += "?" + rawQuery
	}
	return out
}

// pick copies the headers named from h.
func pick(h http.Header, names []string) http.Header {
	out := http.Header{}
	for _, k := range names {
		if vs := h.Values(k); len(vs) > 0 {
			out[http.CanonicalHeaderKey(k)] = vs
		}
	}
	return out
}
