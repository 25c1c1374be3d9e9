package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/entrepot/entrepot/internal/store"
	"github.com/opencontainers/go-digest"
)

// Manifest is a manifest ready to serve.
type Manifest struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	// Body is nil when only the headers were asked for (HEAD).
	Body []byte `json:"-"`
	// fetched: the body came from the source just now, not the store.
	fetched bool
}

// tagRecord is what a tag pointed to when it was last checked.
type tagRecord struct {
	Manifest
	Checked time.Time `json:"checked"`
	// Previous is what the tag pointed to before it last moved, served if
	// the new content cannot be fetched.
	Previous digest.Digest `json:"previous,omitempty"`
	// Frozen: the tag stays on Digest, never revalidated, until unfrozen.
	Frozen bool `json:"frozen,omitempty"`
}

// ManifestRequest asks for a manifest by tag or by digest.
type ManifestRequest struct {
	Source Source
	Repo   string
	Tag    string        // or
	Digest digest.Digest // exactly one is set
	Head   bool          // only the digest, type and size are needed
	// Accepts tells whether the client accepts a media type. When a tag
	// is an index and the client does not accept it, it gets the
	// linux/amd64 manifest instead, as Distribution does.
	Accepts func(mediaType string) bool
	// NoPrefetch: the caller fetches the blobs itself (a warm-up).
	NoPrefetch bool
}

// Manifest returns the manifest a request names. A digest is immutable:
// when stored, it costs no source request. A tag is revalidated with a
// HEAD at most once per TTL; a GET goes to the source only for content
// that is not stored, except that a GET of a tag never seen before is
// one GET of the tag (checkTag). An image the source's policy refuses is
// a *DeniedError, before any of that.
func (c *Cache) Manifest(ctx context.Context, q ManifestRequest) (*Manifest, error) {
	ref := q.Tag
	if ref == "" {
		ref = q.Digest.String()
	}
	if err := c.permit(q.Source, q.Repo, ref); err != nil {
		return nil, err
	}
	if q.Tag == "" {
		return c.negotiate(ctx, q, &Manifest{Digest: q.Digest})
	}
	rec, fetched, err := c.resolveTag(ctx, q.Source, q.Repo, q.Tag, !q.Head)
	if err != nil {
		return nil, err
	}
	want := &rec.Manifest
	if fetched != nil {
		want = fetched // rec's manifest, with its body
	}
	m, err := c.negotiate(ctx, q, want)
	if err != nil && rec.Previous != "" && !errors.Is(err, oci.ErrNotFound) {
		// The tag moved, but its new content cannot be fetched now: what
		// it pointed to before is still a good answer.
		if prev, perr := c.storedManifest(ctx, rec.Previous, true); perr == nil {
			if m, perr := c.negotiate(ctx, q, prev); perr == nil {
				c.noteStale("upstream", q.Source.Name(), "repo", q.Repo, "tag", q.Tag, "served", rec.Previous, "err", err)
				note(ctx, Stale)
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
		index, err := c.manifestByDigest(ctx, q.Source, q.Repo, want, false)
		if err != nil {
			return nil, err
		}
		child, err := defaultPlatform(index.Body)
		if err != nil {
			return nil, err
		}
		want = &Manifest{Digest: child}
	}
	m, err := c.manifestByDigest(ctx, q.Source, q.Repo, want, q.Head)
	if err == nil && m.fetched && !q.Head && !q.NoPrefetch && !oci.IsIndex(m.MediaType) {
		c.prefetchBlobs(q.Source, q.Repo, m.Body)
	}
	return m, err
}

// manifestByDigest returns manifest want.Digest: want itself when its
// tag's GET just fetched it, else stored, or fetched by digest. For a
// HEAD, a known type and size (from a tag's HEAD) suffice.
func (c *Cache) manifestByDigest(ctx context.Context, src Source, repo string, want *Manifest, head bool) (*Manifest, error) {
	if want.fetched {
		return want, nil
	}
	m, err := c.storedManifest(ctx, want.Digest, head)
	if err == nil {
		c.Stats.ManifestHits.Add(1)
		c.pulled.touch(m.Digest, c.now())
		note(ctx, Hit)
		return m, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if head {
		if want.MediaType != "" {
			note(ctx, Hit) // the tag's record says all a HEAD needs
			return want, nil
		}
		return c.headManifest(ctx, src, repo, want.Digest)
	}
	v, err := c.flight(ctx, "manifest "+src.Name()+"/"+repo+"@"+want.Digest.String(), func(ctx context.Context) (any, Result, error) {
		stored := func() (m *Manifest, ok bool) {
			m, err := c.storedManifest(ctx, want.Digest, false)
			return m, err == nil
		}
		if m, ok := stored(); ok {
			return m, Hit, nil
		}
		var m *Manifest
		unlock, ran := c.once(ctx, "manifest "+want.Digest.String(), func() (ok bool) {
			m, ok = stored()
			return ok
		})
		if !ran {
			return m, Joined, nil // another replica fetched it
		}
		defer unlock()
		if c.cluster != nil {
			if m, ok := stored(); ok {
				return m, Joined, nil
			}
		}
		m, err := c.fetchManifest(ctx, src, repo, want.Digest.String(), want.Digest)
		return m, Miss, err
	})
	if err != nil {
		return nil, err
	}
	c.pulled.touch(want.Digest, c.now())
	return v.(*Manifest), nil
}

// resolveTag returns what a tag points to: the stored record while fresh,
// else a revalidation, shared by every client asking at once; and the
// manifest, when the revalidation fetched it (checkTag: get).
func (c *Cache) resolveTag(ctx context.Context, src Source, repo, tag string, get bool) (*tagRecord, *Manifest, error) {
	key := tagKey(src.Name(), repo, tag)
	if rec, fresh := c.loadTag(ctx, src, key); fresh {
		c.Stats.TagHits.Add(1)
		note(ctx, Hit)
		return rec, nil, nil
	} else if rec != nil && src.Failing() {
		c.noteStale("upstream", src.Name(), "repo", repo, "tag", tag, "err", "failing lately")
		note(ctx, Stale)
		return rec, nil, nil
	} else if rec != nil && c.spare(src) {
		note(ctx, Stale)
		return rec, nil, nil
	}
	v, err := c.flight(ctx, key, func(ctx context.Context) (any, Result, error) {
		return c.revalidateTag(ctx, src, repo, tag, key, get)
	})
	if err != nil {
		return nil, nil, err
	}
	a := v.(tagAnswer)
	return a.rec, a.fetched, nil
}

// A tagAnswer is a tag's revalidation: its record, and its manifest when
// the revalidation fetched it.
type tagAnswer struct {
	rec     *tagRecord
	fetched *Manifest
}

// revalidateTag asks the source what the tag points to now, and stores
// the answer.
func (c *Cache) revalidateTag(ctx context.Context, src Source, repo, tag, key string, get bool) (tagAnswer, Result, error) {
	cached, fresh := c.loadTag(ctx, src, key)
	if fresh { // refreshed by a flight that just ended
		return tagAnswer{rec: cached}, Hit, nil
	}
	// In a cluster, one replica revalidates for all; the others read its
	// answer from the store.
	unlock, ran := c.once(ctx, "tag "+key, func() bool {
		cached, fresh = c.loadTag(ctx, src, key)
		return fresh
	})
	if !ran {
		return tagAnswer{rec: cached}, Hit, nil
	}
	defer unlock()
	if c.cluster != nil {
		if cached, fresh = c.loadTag(ctx, src, key); fresh {
			return tagAnswer{rec: cached}, Hit, nil
		}
	}
	rec, fetched, stale, err := c.checkTag(ctx, src, repo, tag, cached, get)
	if err != nil || stale {
		return tagAnswer{rec: rec}, Stale, err
	}
	rec, err = c.storeTag(ctx, src, repo, tag, rec, cached)
	if fetched != nil {
		return tagAnswer{rec, fetched}, Miss, err
	}
	return tagAnswer{rec: rec}, Revalidated, err
}

// checkTag asks the source what the tag points to now, and returns the
// tag's new record, unstored. A HEAD suffices (Docker Hub does not count it
// against the rate limit) unless the source does not send the digest, type
// and size; content is fetched later, by digest, and only if it is not
// stored. But a client's GET of a tag never seen before (get, no cached
// record) is one GET of the tag, which returns the manifest (fetched)
// one round trip sooner: its content is seldom stored, so the GET by
// digest would count against the rate limit all the same. Not while the
// source's rate-limit budget runs low (spare). When the source fails, the
// cached record is returned (stale: true), if there is one
// (stale-if-error).
func (c *Cache) checkTag(ctx context.Context, src Source, repo, tag string, cached *tagRecord, get bool) (rec *tagRecord, fetched *Manifest, stale bool, err error) {
	c.Stats.TagRevalidations.Add(1)
	c.log.Debug("revalidating tag", "upstream", src.Name(), "repo", repo, "tag", tag)
	rec = &tagRecord{Checked: c.now()}
	if !get || cached != nil || c.spare(src) {
		desc, err := src.Resolve(ctx, repo, tag)
		if err != nil {
			rec, err := staleOr(c, src, cached, err, "repo", repo, "tag", tag)
			return rec, nil, true, err
		}
		if desc.Digest != "" && desc.MediaType != "" && desc.Size >= 0 {
			rec.Manifest = Manifest{Digest: desc.Digest, MediaType: desc.MediaType, Size: desc.Size}
			return rec, nil, false, nil
		}
		// Without a digest, a type and a size, only a GET tells.
	}
	m, err := c.fetchManifest(ctx, src, repo, tag, "")
	if err != nil {
		rec, err := staleOr(c, src, cached, err, "repo", repo, "tag", tag)
		return rec, nil, true, err
	}
	rec.Manifest = *m
	rec.Body, rec.fetched = nil, false
	return rec, m, false, nil
}

// storeTag stores a tag's new record, unless the tag was frozen meanwhile,
// and returns the record in force. cached is the record the check began
// from: if the tag moved, what it pointed to is kept as Previous.
func (c *Cache) storeTag(ctx context.Context, src Source, repo, tag string, rec, cached *tagRecord) (*tagRecord, error) {
	key := tagKey(src.Name(), repo, tag)
	mu := c.tagLock(key)
	mu.Lock()
	defer mu.Unlock()
	if stored, _ := c.loadTag(ctx, src, key); stored != nil && stored.Frozen {
		return stored, nil // frozen while the source answered
	}
	if cached != nil {
		rec.Previous = cached.Previous
		if cached.Digest != rec.Digest {
			c.Stats.TagChanges.Add(1)
			c.log.Info("tag moved", "upstream", src.Name(), "repo", repo, "tag", tag, "from", cached.Digest, "to", rec.Digest)
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
// its TTL (a frozen tag always is). A record in memory that is no longer
// fresh is read again from the store, where another replica may have
// refreshed it.
func (c *Cache) loadTag(ctx context.Context, src Source, key string) (rec *tagRecord, fresh bool) {
	if v, ok := c.memo.get(key); ok {
		rec = v.(*tagRecord)
		if rec.Frozen || c.now().Sub(rec.Checked) < src.TTL() {
			return rec, true
		}
	}
	epoch := c.memo.epochNow()
	stored := new(tagRecord)
	if err := c.getJSON(ctx, key, stored); err != nil {
		return rec, false
	}
	c.memo.put(key, stored, 0, epoch)
	return stored, stored.Frozen || c.now().Sub(stored.Checked) < src.TTL()
}

// putTag stores a tag's record.
func (c *Cache) putTag(ctx context.Context, key string, rec *tagRecord) error {
	epoch := c.memo.epochNow()
	if err := c.putJSON(ctx, key, rec); err != nil {
		return err
	}
	c.memo.put(key, rec, 0, epoch)
	return nil
}

// headManifest asks the source for a manifest's type and size by digest,
// without a GET (which Docker Hub counts).
func (c *Cache) headManifest(ctx context.Context, src Source, repo string, d digest.Digest) (*Manifest, error) {
	desc, err := src.Resolve(ctx, repo, d.String())
	if err != nil {
		return nil, err
	}
	if desc.MediaType == "" || desc.Size < 0 {
		// Without a usable type and size, only a GET tells.
		return c.manifestByDigest(ctx, src, repo, &Manifest{Digest: d}, false)
	}
	return &Manifest{Digest: d, MediaType: desc.MediaType, Size: desc.Size}, nil
}

// fetchManifest GETs a manifest by tag or digest, verifies it (against
// want, or against the digest the source announces) and stores it.
func (c *Cache) fetchManifest(ctx context.Context, src Source, repo, ref string, want digest.Digest) (*Manifest, error) {
	body, desc, err := src.Manifest(ctx, repo, ref)
	if err != nil {
		return nil, err
	}
	if want == "" {
		want = desc.Digest
		if want == "" {
			want = digest.Canonical.FromBytes(body)
		}
	}
	if got := want.Algorithm().FromBytes(body); got != want {
		return nil, fmt.Errorf("%w: upstream %q sent %s for manifest %s", oci.ErrDigestMismatch, src.Name(), got, want)
	}
	mt := desc.MediaType
	if mt == "" {
		mt = mediaTypeOf(body)
	}
	m := &Manifest{Digest: want, MediaType: mt, Size: int64(len(body)), Body: body, fetched: true}
	if err := c.storeManifest(ctx, src, repo, m); err != nil {
		return nil, err
	}
	c.Stats.ManifestFills.Add(1)
	return m, nil
}

// storeManifest stores the body as a blob, then the record of its media
// type: a manifest is served only once both are in place. A link record
// notes the repository it came from, for listing and purge.
func (c *Cache) storeManifest(ctx context.Context, src Source, repo string, m *Manifest) error {
	epoch := c.memo.epochNow()
	// A sweep under way planned from a catalog without this manifest: it
	// must keep the manifest and what it lists, which it does for what
	// was pulled since it began.
	now := c.now()
	c.pulled.touch(m.Digest, now)
	for _, d := range parseRefs(m.Body) {
		c.pulled.touch(d, now)
	}
	w, err := c.store.Spool.Create(ctx, m.Digest)
	if err != nil {
		return err
	}
	if _, err := w.Write(m.Body); err != nil {
		w.Discard()
		return err
	}
	if err := c.store.Content.Commit(ctx, m.Digest, w); err != nil {
		return err
	}
	if err := c.store.Records.Put(ctx, linkKey(src.Name(), repo, m.Digest), nil); err != nil {
		return err
	}
	if err := c.putJSON(ctx, manifestKey(m.Digest), m); err != nil {
		return err
	}
	c.memoManifest(m, epoch)
	c.noteCommit()
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
	epoch := c.memo.epochNow()
	var m Manifest
	if err := c.getJSON(ctx, key, &m); err != nil {
		return nil, err
	}
	if head {
		// The record alone is not the manifest: its body may be gone
		// (evicted in the instant after the record was read).
		if _, err := c.store.Content.Stat(ctx, d); err != nil {
			return nil, err
		}
		return &m, nil
	}
	r, size, err := c.store.Content.Open(ctx, d, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if size > oci.MaxManifestSize {
		return nil, fmt.Errorf("%w: stored manifest %s", oci.ErrTooLarge, d)
	}
	m.Body = make([]byte, size)
	if _, err := io.ReadFull(r, m.Body); err != nil {
		return nil, err
	}
	// Verified when it was stored; a body that no longer matches (a
	// damaged store) is served as before, but not kept.
	if d.Algorithm().FromBytes(m.Body) == d {
		c.memoManifest(&m, epoch)
	}
	return &m, nil
}

// memoManifest keeps a verified manifest in memory, read or written from
// epoch on.
func (c *Cache) memoManifest(m *Manifest, epoch uint64) {
	kept := *m
	kept.fetched = false
	c.memo.put(manifestKey(m.Digest), &kept, int64(len(m.Body)), epoch)
}

// mediaTypeOf is a manifest's own mediaType field, for a source that sent
// no precise Content-Type; failing that, what its fields say it is.
func mediaTypeOf(body []byte) string {
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

// defaultPlatform picks linux/amd64 from an index, as registries do for
// clients that do not accept indexes; failing that, the first manifest.
func defaultPlatform(body []byte) (digest.Digest, error) {
	var index struct {
		Manifests []oci.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(body, &index); err != nil || len(index.Manifests) == 0 {
		return "", fmt.Errorf("%w: an index with no manifests", oci.ErrInvalid)
	}
	for _, m := range index.Manifests {
		if p := m.Platform; p != nil && p.OS == "linux" && p.Architecture == "amd64" {
			return m.Digest, nil
		}
	}
	return index.Manifests[0].Digest, nil
}
