package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/entrepot/entrepot/internal/upstream"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// acceptAll asks an upstream for every manifest type.
var acceptAll = http.Header{"Accept": oci.ManifestMediaTypes}

// Manifest is a manifest ready to serve.
type Manifest struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	// Body is nil when only the headers were asked for (HEAD).
	Body []byte `json:"-"`
	// fetched: the body came from the upstream just now, not the store.
	fetched bool
}

// tagRecord is what a tag pointed to when it was last checked.
type tagRecord struct {
	Manifest
	Checked time.Time `json:"checked"`
	// Previous is what the tag pointed to before it last moved, served if
	// the new content cannot be fetched.
	Previous digest.Digest `json:"previous,omitempty"`
}

// ManifestRequest asks for a manifest by tag or by digest.
type ManifestRequest struct {
	Up     *Upstream
	Repo   string
	Tag    string        // or
	Digest digest.Digest // exactly one is set
	Head   bool          // only the digest, type and size are needed
	// Accepts tells whether the client accepts a media type. When a tag
	// is an index and the client does not accept it, it gets the
	// linux/amd64 manifest instead, as Distribution does.
	Accepts func(mediaType string) bool
}

// Manifest returns the manifest a request names. A digest is immutable:
// when stored, it costs no upstream request. A tag is revalidated with a
// HEAD at most once per TTL; a GET goes upstream only for content that is
// not stored.
func (c *Cache) Manifest(ctx context.Context, q ManifestRequest) (*Manifest, error) {
	if q.Tag == "" {
		return c.negotiate(ctx, q, &Manifest{Digest: q.Digest})
	}
	rec, err := c.resolveTag(ctx, q.Up, q.Repo, q.Tag)
	if err != nil {
		return nil, err
	}
	m, err := c.negotiate(ctx, q, &rec.Manifest)
	if err != nil && rec.Previous != "" && !isNotFound(err) {
		// The tag moved, but its new content cannot be fetched now: what
		// it pointed to before is still a good answer.
		if prev, perr := c.storedManifest(ctx, rec.Previous, true); perr == nil {
			if m, perr := c.negotiate(ctx, q, prev); perr == nil {
				c.noteStale("upstream", q.Up.Name(), "repo", q.Repo, "tag", q.Tag, "served", rec.Previous, "err", err)
				return m, nil
			}
		}
	}
	return m, err
}

// negotiate answers a tag that points to want: the manifest itself, or,
// when it is an index the client does not accept, its linux/amd64 manifest.
func (c *Cache) negotiate(ctx context.Context, q ManifestRequest, want *Manifest) (*Manifest, error) {
	if oci.IsIndex(want.MediaType) && q.Accepts != nil && !q.Accepts(want.MediaType) {
		index, err := c.manifestByDigest(ctx, q.Up, q.Repo, want, false)
		if err != nil {
			return nil, err
		}
		child, err := defaultPlatform(index.Body)
		if err != nil {
			return nil, err
		}
		want = &Manifest{Digest: child}
	}
	m, err := c.manifestByDigest(ctx, q.Up, q.Repo, want, q.Head)
	if err == nil && m.fetched && !q.Head && !oci.IsIndex(m.MediaType) {
		c.prefetchBlobs(q.Up, q.Repo, m.Body)
	}
	return m, err
}

func isNotFound(err error) bool {
	var ue *upstream.Error
	return errors.As(err, &ue) && ue.NotFound()
}

// manifestByDigest returns manifest want.Digest: stored, or fetched by
// digest. For a HEAD, a known type and size (from a tag's HEAD) suffice.
func (c *Cache) manifestByDigest(ctx context.Context, up *Upstream, repo string, want *Manifest, head bool) (*Manifest, error) {
	m, err := c.storedManifest(ctx, want.Digest, head)
	if err == nil {
		c.Stats.ManifestHits.Add(1)
		return m, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if head {
		if want.MediaType != "" {
			return want, nil
		}
		return c.headManifest(ctx, up, repo, want.Digest)
	}
	v, err := c.flight(ctx, "manifest "+up.Name()+"/"+repo+"@"+want.Digest.String(), func(ctx context.Context) (any, error) {
		if m, err := c.storedManifest(ctx, want.Digest, false); err == nil {
			return m, nil
		}
		return c.fetchManifest(ctx, up, repo, want.Digest.String(), want.Digest)
	})
	if err != nil {
		return nil, err
	}
	return v.(*Manifest), nil
}

// resolveTag returns what a tag points to: the stored record while fresh,
// else a revalidation with one HEAD, shared by every client asking at once.
func (c *Cache) resolveTag(ctx context.Context, up *Upstream, repo, tag string) (*tagRecord, error) {
	key := tagKey(up.Name(), repo, tag)
	if rec, fresh := c.loadTag(ctx, up, key); fresh {
		c.Stats.TagHits.Add(1)
		return rec, nil
	} else if rec != nil && c.isQuiet(up) {
		c.noteStale("upstream", up.Name(), "repo", repo, "tag", tag, "err", "failing lately")
		return rec, nil
	}
	v, err := c.flight(ctx, key, func(ctx context.Context) (any, error) {
		return c.revalidateTag(ctx, up, repo, tag, key)
	})
	if err != nil {
		return nil, err
	}
	return v.(*tagRecord), nil
}

// revalidateTag asks the upstream what the tag points to now. A HEAD
// suffices (Docker Hub does not count it against the rate limit) unless the
// upstream does not send the digest; content is fetched later, by digest,
// and only if it is not stored.
func (c *Cache) revalidateTag(ctx context.Context, up *Upstream, repo, tag, key string) (*tagRecord, error) {
	cached, fresh := c.loadTag(ctx, up, key)
	if fresh { // refreshed by a flight that just ended
		return cached, nil
	}
	c.Stats.TagRevalidations.Add(1)
	resp, err := up.Do(ctx, http.MethodHead, repo, "manifests/"+tag, nil, acceptAll)
	if err != nil {
		return staleOr(c, up, cached, err, "repo", repo, "tag", tag)
	}
	resp.Body.Close()
	rec := &tagRecord{Checked: c.now()}
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if mt := headerMediaType(resp.Header); err == nil && mt != "" && resp.ContentLength >= 0 {
		rec.Manifest = Manifest{Digest: d, MediaType: mt, Size: resp.ContentLength}
	} else {
		// Without a digest, a type and a size, only a GET tells.
		m, err := c.fetchManifest(ctx, up, repo, tag, "")
		if err != nil {
			return staleOr(c, up, cached, err, "repo", repo, "tag", tag)
		}
		rec.Manifest = *m
		rec.Body = nil
	}
	if cached != nil {
		rec.Previous = cached.Previous
		if cached.Digest != rec.Digest {
			c.Stats.TagChanges.Add(1)
			c.log.Info("tag moved", "upstream", up.Name(), "repo", repo, "tag", tag, "from", cached.Digest, "to", rec.Digest)
			if _, err := c.storedManifest(ctx, cached.Digest, true); err == nil {
				rec.Previous = cached.Digest
			}
		}
	}
	if err := c.putTag(ctx, key, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// loadTag returns the record of a tag, if any, and whether it is within
// its TTL. A record in memory that is no longer fresh is read again from
// the store, where another replica may have refreshed it.
func (c *Cache) loadTag(ctx context.Context, up *Upstream, key string) (rec *tagRecord, fresh bool) {
	if v, ok := c.memo.get(key); ok {
		rec = v.(*tagRecord)
		if c.now().Sub(rec.Checked) < up.TTL {
			return rec, true
		}
	}
	stored := new(tagRecord)
	if err := c.getJSON(ctx, key, stored); err != nil {
		return rec, false
	}
	c.memo.put(key, stored, 0)
	return stored, c.now().Sub(stored.Checked) < up.TTL
}

// putTag stores a tag's record.
func (c *Cache) putTag(ctx context.Context, key string, rec *tagRecord) error {
	if err := c.putJSON(ctx, key, rec); err != nil {
		return err
	}
	c.memo.put(key, rec, 0)
	return nil
}

// headManifest asks the upstream for a manifest's type and size by digest,
// without a GET (which Docker Hub counts).
func (c *Cache) headManifest(ctx context.Context, up *Upstream, repo string, d digest.Digest) (*Manifest, error) {
	resp, err := up.Do(ctx, http.MethodHead, repo, "manifests/"+d.String(), nil, acceptAll)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return nil, fmt.Errorf("%w: upstream %q announced %s for manifest %s", ErrDigestMismatch, up.Name(), got, d)
	}
	mt := headerMediaType(resp.Header)
	if mt == "" || resp.ContentLength < 0 || resp.ContentLength > MaxDocumentSize {
		// Without a usable type and size, only a GET tells.
		return c.manifestByDigest(ctx, up, repo, &Manifest{Digest: d}, false)
	}
	return &Manifest{Digest: d, MediaType: mt, Size: resp.ContentLength}, nil
}

// fetchManifest GETs a manifest by tag or digest, verifies it (against
// want, or against the digest the upstream announces) and stores it.
func (c *Cache) fetchManifest(ctx context.Context, up *Upstream, repo, ref string, want digest.Digest) (*Manifest, error) {
	resp, err := up.Do(ctx, http.MethodGet, repo, "manifests/"+ref, nil, acceptAll)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > MaxDocumentSize {
		return nil, fmt.Errorf("%w: upstream %q: manifest %s is %d bytes, over the limit of %d", ErrTooLarge, up.Name(), ref, resp.ContentLength, MaxDocumentSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("upstream %q: reading manifest %s: %w", up.Name(), ref, err)
	}
	if len(body) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: upstream %q: manifest %s is over the limit of %d bytes", ErrTooLarge, up.Name(), ref, MaxDocumentSize)
	}
	if want == "" {
		want = digest.Canonical.FromBytes(body)
		if announced, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil {
			want = announced
		}
	}
	if got := want.Algorithm().FromBytes(body); got != want {
		return nil, fmt.Errorf("%w: upstream %q sent %s for manifest %s", ErrDigestMismatch, up.Name(), got, want)
	}
	m := &Manifest{Digest: want, MediaType: mediaType(resp.Header, body), Size: int64(len(body)), Body: body, fetched: true}
	if err := c.storeManifest(ctx, m); err != nil {
		return nil, err
	}
	c.Stats.ManifestFills.Add(1)
	return m, nil
}

// storeManifest stores the body as a blob, then the record of its media
// type: a manifest is served only once both are in place.
func (c *Cache) storeManifest(ctx context.Context, m *Manifest) error {
	w, err := c.store.Create(ctx)
	if err != nil {
		return err
	}
	if _, err := w.Write(m.Body); err != nil {
		w.Cancel()
		return err
	}
	if err := w.Commit(ctx, m.Digest); err != nil {
		return err
	}
	if err := c.putJSON(ctx, manifestKey(m.Digest), m); err != nil {
		return err
	}
	c.memoManifest(m)
	return nil
}

// storedManifest returns a stored manifest; with head, without its body.
func (c *Cache) storedManifest(ctx context.Context, d digest.Digest, head bool) (*Manifest, error) {
	key := manifestKey(d)
	if v, ok := c.memo.get(key); ok {
		m := *v.(*Manifest)
		if head {
			m.Body = nil
		}
		return &m, nil
	}
	var m Manifest
	if err := c.getJSON(ctx, key, &m); err != nil {
		return nil, err
	}
	if head {
		return &m, nil
	}
	r, size, err := c.store.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if size > MaxDocumentSize {
		return nil, fmt.Errorf("%w: stored manifest %s", ErrTooLarge, d)
	}
	m.Body = make([]byte, size)
	if _, err := io.ReadFull(r, m.Body); err != nil {
		return nil, err
	}
	// Verified when it was stored; a body that no longer matches (a
	// damaged store) is served as before, but not kept.
	if d.Algorithm().FromBytes(m.Body) == d {
		c.memoManifest(&m)
	}
	return &m, nil
}

// memoManifest keeps a verified manifest in memory.
func (c *Cache) memoManifest(m *Manifest) {
	kept := *m
	kept.fetched = false
	c.memo.put(manifestKey(m.Digest), &kept, int64(len(m.Body)))
}

// mediaType is the upstream's Content-Type, or the body's own mediaType
// field when the upstream sent none or a generic one.
func mediaType(h http.Header, body []byte) string {
	if mt := headerMediaType(h); mt != "" {
		return mt
	}
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	json.Unmarshal(body, &probe)
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return oci.MediaTypeImageIndex
	}
	return oci.MediaTypeImageManifest
}

// headerMediaType is the Content-Type of a manifest response, or "" when
// it is missing or too generic to tell a manifest from an index.
func headerMediaType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch mt {
	case "application/json", "text/plain", "application/octet-stream":
		return ""
	}
	return mt
}

// defaultPlatform picks linux/amd64 from an index, as registries do for
// clients that do not accept indexes; failing that, the first manifest.
func defaultPlatform(body []byte) (digest.Digest, error) {
	var index v1.Index
	if err := json.Unmarshal(body, &index); err != nil || len(index.Manifests) == 0 {
		return "", fmt.Errorf("%w: an index with no manifests", ErrBadUpstream)
	}
	for _, m := range index.Manifests {
		if p := m.Platform; p != nil && p.OS == "linux" && p.Architecture == "amd64" {
			return m.Digest, nil
		}
	}
	return index.Manifests[0].Digest, nil
}
