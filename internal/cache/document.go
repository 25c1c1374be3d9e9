package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/entrepot/entrepot/internal/oci"
	"github.com/opencontainers/go-digest"
)

// Document is a source's answer the cache keeps for a TTL: a tag list
// page or a referrers index.
type Document struct {
	Body    []byte    `json:"body"`
	Link    string    `json:"link,omitempty"` // the next page, as the source wrote it
	Checked time.Time `json:"checked"`
}

// Tags returns a page of repo's tag list; query holds n and last.
func (c *Cache) Tags(ctx context.Context, src Source, repo string, query url.Values) (*Document, error) {
	if err := c.permit(src, repo, ""); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(query.Encode()))
	key := repoKey(src.Name(), repo) + "/_taglists/" + hex.EncodeToString(sum[:8])
	fetch := func(ctx context.Context) (*Document, error) {
		body, link, err := src.Tags(ctx, repo, query)
		if err != nil {
			return nil, err
		}
		if !json.Valid(body) {
			return nil, fmt.Errorf("%w: upstream %q: the tag list of %s is not JSON", oci.ErrInvalid, src.Name(), repo)
		}
		return &Document{Body: body, Link: link}, nil
	}
	return c.document(ctx, src, key, fetch, "repo", repo, "tags", query.Encode())
}

// Referrers returns the referrers index of manifest d, unfiltered. A
// source without the referrers API gets the answer built as the
// distribution spec tells clients to: from the index tagged <alg>-<hex>,
// or an empty index when there is no such tag.
func (c *Cache) Referrers(ctx context.Context, src Source, repo string, d digest.Digest) (*Document, error) {
	if err := c.permit(src, repo, d.String()); err != nil {
		return nil, err
	}
	key := repoKey(src.Name(), repo) + "/_referrers/" + string(d.Algorithm()) + "/" + d.Encoded()
	fetch := func(ctx context.Context) (*Document, error) {
		body, err := src.Referrers(ctx, repo, d)
		if errors.Is(err, oci.ErrUnsupported) {
			body, err = c.referrersByTag(ctx, src, repo, d)
		}
		if err != nil {
			return nil, err
		}
		if !json.Valid(body) {
			return nil, fmt.Errorf("%w: upstream %q: the referrers of %s are not JSON", oci.ErrInvalid, src.Name(), d)
		}
		return &Document{Body: body}, nil
	}
	return c.document(ctx, src, key, fetch, "repo", repo, "referrers", d)
}

// emptyIndex is the referrers answer when nothing refers to a manifest.
var emptyIndex = []byte(`{"schemaVersion":2,"mediaType":"` + oci.MediaTypeImageIndex + `","manifests":[]}`)

// referrersByTag reads the referrers tag schema: the tag <alg>-<hex> is an
// index of the manifests that refer to d. The tag is resolved with a HEAD
// (which Docker Hub does not count); its index is fetched by digest, and
// so only once.
func (c *Cache) referrersByTag(ctx context.Context, src Source, repo string, d digest.Digest) ([]byte, error) {
	tag := string(d.Algorithm()) + "-" + d.Encoded()
	if !oci.ValidTag(tag) {
		tag = tag[:128] // the spec truncates long digests so
	}
	desc, err := src.Resolve(ctx, repo, tag)
	if errors.Is(err, oci.ErrNotFound) {
		return emptyIndex, nil
	}
	if err != nil {
		return nil, err
	}
	want := &Manifest{Digest: desc.Digest}
	if desc.Digest == "" {
		m, err := c.fetchManifest(ctx, src, repo, tag, "")
		if err != nil {
			return nil, err
		}
		want = m
	}
	m, err := c.manifestByDigest(ctx, src, repo, want, false)
	if err != nil {
		return nil, err
	}
	if !oci.IsIndex(m.MediaType) {
		return nil, fmt.Errorf("%w: upstream %q: tag %s is a %s, not an index", oci.ErrInvalid, src.Name(), tag, m.MediaType)
	}
	return m.Body, nil
}

// document answers with the stored document under key while fresh, and
// otherwise with one fetch, shared by every client asking at once, with
// stale-if-error. what describes the document for the log.
func (c *Cache) document(ctx context.Context, src Source, key string, fetch func(context.Context) (*Document, error), what ...any) (*Document, error) {
	if doc, fresh := c.loadDocument(ctx, src, key); fresh {
		note(ctx, Hit)
		return doc, nil
	} else if doc != nil && src.Failing() {
		c.noteStale(append(what, "upstream", src.Name(), "err", "failing lately")...)
		note(ctx, Stale)
		return doc, nil
	}
	v, err := c.flight(ctx, key, func(ctx context.Context) (any, Result, error) {
		cached, fresh := c.loadDocument(ctx, src, key)
		if fresh {
			return cached, Hit, nil
		}
		doc, err := fetch(ctx)
		if err != nil {
			doc, err := staleOr(c, src, cached, err, what...)
			return doc, Stale, err
		}
		doc.Checked = c.now()
		r := Miss
		if cached != nil {
			r = Revalidated
		}
		return doc, r, c.putJSON(ctx, key, doc)
	})
	if err != nil {
		return nil, err
	}
	return v.(*Document), nil
}

// loadDocument returns a stored document, if any, and whether it is within
// its TTL.
func (c *Cache) loadDocument(ctx context.Context, src Source, key string) (doc *Document, fresh bool) {
	doc = new(Document)
	if err := c.getJSON(ctx, key, doc); err != nil {
		return nil, false
	}
	return doc, c.now().Sub(doc.Checked) < src.TTL()
}

// Record keys. Repository names and tags are validated by package route;
// "_tags" and the like cannot be repository components (those start with a
// letter or digit), so a repository's records never collide with a deeper
// repository's.
func repoKey(source, repo string) string { return "repos/" + source + "/" + repo }

func tagKey(source, repo, tag string) string { return repoKey(source, repo) + "/_tags/" + tag }

// linkKey notes that manifest d was fetched for repo.
func linkKey(source, repo string, d digest.Digest) string {
	return repoKey(source, repo) + "/_manifests/" + string(d.Algorithm()) + "/" + d.Encoded()
}

func manifestKey(d digest.Digest) string {
	return "manifests/" + string(d.Algorithm()) + "/" + d.Encoded()
}

func (c *Cache) getJSON(ctx context.Context, key string, v any) error {
	b, err := c.store.Records.Get(ctx, key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (c *Cache) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.store.Records.Put(ctx, key, b)
}
